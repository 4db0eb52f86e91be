// Bundles each page script in static/js/ (and the npm packages it imports) into
// static/dist/, fingerprinted, with a manifest.json the templates read.
import { build } from "esbuild";
import { readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
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
