// Overlay planes (60xx, PS3.3 C.9.2), which dwv 0.36 does not draw: each plane's bits
// (one per pixel, rows first, least significant bit first) painted over the image after
// dwv draws it, on dwv's own canvas with the transform dwv drew the image with, so an
// overlay pixel covers exactly the image pixel it marks at any zoom or pan.

const COLOUR = [255, 255, 0]; // yellow: unlike any grey, so an overlay never vanishes

function first(element) {
  if (!element || element.value === undefined) return undefined;
  const value = ArrayBuffer.isView(element.value) || Array.isArray(element.value) ? element.value[0] : element.value;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

function bytesOf(value) {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value) && value.length && ArrayBuffer.isView(value[0])) return bytesOf(value[0]);
  return null;
}

// The overlay planes of a file's elements: [{group, rows, columns, top, left, frame, bits}].
export function overlayPlanes(elements) {
  const planes = [];
  for (let group = 0x6000; group <= 0x601e; group += 2) {
    const prefix = group.toString(16).toUpperCase();
    const find = (element) => elements[`${prefix}${element}`] || elements[`${prefix.toLowerCase()}${element}`];
    const data = find("3000");
    const rows = first(find("0010"));
    const columns = first(find("0011"));
    if (!data || !rows || !columns) continue;
    const bits = bytesOf(data.value);
    if (!bits) continue;
    const origin = find("0050") ? Array.from(find("0050").value).map(Number) : [1, 1];
    planes.push({
      group,
      rows,
      columns,
      top: origin[0] - 1, // the origin is 1-based: (1, 1) is the image's first pixel
      left: origin[1] - 1,
      frame: (first(find("0051")) ?? 1) - 1,
      bits,
    });
  }
  return planes;
}

// One image-sized canvas with every plane's set bits in COLOUR, the rest transparent.
export function overlayCanvas(planes, imageColumns, imageRows) {
  const canvas = document.createElement("canvas");
  canvas.width = imageColumns;
  canvas.height = imageRows;
  const context = canvas.getContext("2d");
  const image = context.createImageData(imageColumns, imageRows);
  for (const plane of planes) {
    for (let r = 0; r < plane.rows; r += 1) {
      const y = plane.top + r;
      if (y < 0 || y >= imageRows) continue;
      for (let c = 0; c < plane.columns; c += 1) {
        const x = plane.left + c;
        if (x < 0 || x >= imageColumns) continue;
        const bit = r * plane.columns + c;
        if (!((plane.bits[bit >> 3] >> (bit & 7)) & 1)) continue;
        const at = (y * imageColumns + x) * 4;
        image.data.set([...COLOUR, 255], at);
      }
    }
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

// Paints ``overlay`` over the layer's canvas with the transform dwv left on it.
export function paintOverlay(canvasElement, overlay) {
  const context = canvasElement.getContext("2d");
  const smoothing = context.imageSmoothingEnabled;
  context.imageSmoothingEnabled = false;
  context.drawImage(overlay, 0, 0);
  context.imageSmoothingEnabled = smoothing;
}
