// A test-only page script: Cornerstone3D's DICOMweb image loader (wadors) opens every
// frame of a series from a case's DICOMweb root, as OHIF and other viewers do, and hands
// back a digest of each decoded frame for the test to compare with pydicom's decode.
// Built by static/build.mjs into tests/browser/cornerstone/dist/; never part of the app.
import { imageLoader, init as initCore } from "@cornerstonejs/core";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader";

let ready = null;

function start() {
  ready ??= Promise.resolve(initCore()).then(() => {
    dicomImageLoader.init({
      maxWebWorkers: 1,
      // The codecs' .wasm files are copied beside this bundle.
      wasmBasePath: new URL("wasm/", import.meta.url).href,
    });
  });
  return ready;
}

async function digest(typed) {
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  const hash = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

window.openSeries = async function openSeries(root, study, series) {
  await start();
  const base = `${root}/studies/${study}/series/${series}`;
  const answer = await fetch(`${base}/metadata`, {
    headers: { Accept: "application/dicom+json" },
  });
  if (!answer.ok) throw new Error(`metadata: ${answer.status}`);
  const frames = [];
  for (const instance of await answer.json()) {
    const sop = instance["00080018"].Value[0];
    const count = Number(instance["00280008"]?.Value?.[0] ?? 1);
    for (let number = 1; number <= count; number += 1) {
      const imageId = `wadors:${base}/instances/${sop}/frames/${number}`;
      dicomImageLoader.wadors.metaDataManager.add(imageId, instance);
      // The stored values as decoded: no modality LUT applied.
      const image = await imageLoader.loadAndCacheImage(imageId, {
        preScale: { enabled: false },
      });
      const pixels = image.getPixelData();
      frames.push({
        sop,
        number,
        rows: image.rows,
        columns: image.columns,
        color: image.color,
        type: pixels.constructor.name,
        length: pixels.length,
        sha256: await digest(pixels),
      });
    }
  }
  return frames;
};
