// Bundles each page script in static/js/ (and the npm packages it imports) into
// static/dist/, fingerprinted, with a manifest.json the templates read.
import { build } from "esbuild";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "js");
const out = join(here, "dist");

const entries = readdirSync(source)
  .filter((name) => name.endsWith(".js") && !name.startsWith("_"))
  .map((name) => join(source, name));
// The one stylesheet is fingerprinted too, so every page may keep it for a year.
entries.push(join(here, "css", "telemed.css"));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: entries,
  bundle: true,
  format: "esm",
  splitting: true,
  minify: true,
  sourcemap: true,
  target: ["chrome100", "firefox100", "safari15"],
  outdir: out,
  entryNames: "[name]-[hash]",
  chunkNames: "chunks/[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  loader: { ".wasm": "file", ".woff2": "file", ".png": "file", ".svg": "file", ".gif": "file" },
  metafile: true,
  logLevel: "warning",
});

const manifest = {};
const pages = new Set(entries.map((entry) => relative(process.cwd(), entry)));
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  // Modules a page imports on demand are entry points to esbuild too: only pages are named.
  if (!info.entryPoint || !pages.has(info.entryPoint)) continue;
  const logical = basename(info.entryPoint).replace(/\.(js|css)$/, "") + (file.endsWith(".css") ? ".css" : ".js");
  manifest[logical] = relative(out, file);
  if (info.cssBundle) {
    manifest[logical.replace(/\.js$/, ".css")] = relative(out, info.cssBundle);
  }
}
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2));
// What each output imports, statically or on demand: bench/page_weight.py reads it.
writeFileSync(join(out, "metafile.json"), JSON.stringify(result.metafile));

// A gzipped copy beside each script and style sheet, for the proxy to send as it is
// (nginx gzip_static, docs/deployment.md): compressed once at build time, at the best level.
for (const file of Object.keys(result.metafile.outputs)) {
  if (/\.(js|css)$/.test(file)) {
    writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
  }
}
console.log(`built ${Object.keys(manifest).length} bundles into static/dist/`);

// A test-only harness, never served by the app: Cornerstone3D's DICOMweb image loader for
// the browser test that opens a case's series through it (tests/test_cornerstone_browser.py).
// The loader starts its decoding worker from "./decodeImageFrameWorker.js" beside the
// bundle, and the worker fetches the codecs' .wasm files from wasm/ (the harness says so).
const harness = join(here, "..", "tests", "browser", "cornerstone");
const loader = join(here, "..", "node_modules", "@cornerstonejs", "dicom-image-loader");
if (existsSync(loader)) {
  const harnessOut = join(harness, "dist");
  rmSync(harnessOut, { recursive: true, force: true });
  await build({
    entryPoints: {
      harness: join(harness, "harness.js"),
      decodeImageFrameWorker: join(loader, "dist", "esm", "decodeImageFrameWorker.js"),
    },
    bundle: true,
    format: "esm",
    minify: true,
    target: ["chrome100"],
    outdir: harnessOut,
    // The codecs' Emscripten glue requires these only when run under Node.
    external: ["fs", "path"],
    // Two Node modules that libraries under the loader require when loaded.
    alias: {
      url: join(harness, "shims", "url.cjs"),
      events: join(harness, "shims", "events.cjs"),
    },
    logLevel: "error",
  });
  mkdirSync(join(harnessOut, "wasm"), { recursive: true });
  const codecs = join(here, "..", "node_modules", "@cornerstonejs");
  for (const [codec, file] of [
    ["codec-openjpeg", "openjpegwasm_decode.wasm"],
    ["codec-charls", "charlswasm_decode.wasm"],
    ["codec-libjpeg-turbo-8bit", "libjpegturbowasm_decode.wasm"],
  ]) {
    copyFileSync(join(codecs, codec, "dist", file), join(harnessOut, "wasm", file));
  }
  copyFileSync(join(harness, "index.html"), join(harnessOut, "index.html"));
  console.log("built the Cornerstone3D test harness into tests/browser/cornerstone/dist/");
}
