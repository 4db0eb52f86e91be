// The window of a frame whose file gives none: that frame's own lowest to highest value
// (after rescale), as the server renders it. dwv's "minmax" spans the whole series or
// multi-frame instance, so a frame quieter than the brightest one came out grey and flat.

// dwv's LINEAR window maps (x - (c - 0.5)) / (w - 1) + 0.5 onto 0..1 (PS3.3 C.11.2.1.2);
// c and w are chosen so that this is (x - low) / (high - low), the server's stretch.
export function minMaxWindow(low, high) {
  const span = Math.max(high - low, 1e-6);
  return { center: (low + high) / 2 + 0.5, width: span + 1 };
}

// The number of the 2D plane at ``index`` (slices, then frames) in the image's buffer.
export function planeNumber(image, index) {
  const size = image.getGeometry().getSize();
  let position = 0;
  for (let dim = size.length() - 1; dim >= 2; dim -= 1) {
    position = position * size.get(dim) + index.get(dim);
  }
  return position;
}

// The rescaled range of the 2D plane at ``index`` of a monochrome image whose paged
// dimension (slices or frames) is the only one beyond the plane.
export function planeRange(image, index) {
  const size = image.getGeometry().getSize();
  const plane = size.get(0) * size.get(1);
  const buffer = image.getBuffer();
  const start = planeNumber(image, index) * plane;
  let low = Infinity;
  let high = -Infinity;
  for (let i = start; i < start + plane; i += 1) {
    const value = buffer[i];
    if (value < low) low = value;
    if (value > high) high = value;
  }
  const rsi = image.getRescaleSlopeAndIntercept(index);
  const [a, b] = [rsi.apply(low), rsi.apply(high)];
  return { low: Math.min(a, b), high: Math.max(a, b) };
}

// dwv bounds every window it is given to the image's rescaled value range
// (validateWindowLevel: centre inside it, width no wider), and measures that range on the
// first frame only. A frame brighter than the first was clipped at the first's highest
// value, and a window as the file gives it (RG3: 550/1024 on values 0-1023) or as a
// frame's own range needs it (width = span + 1) came out a level narrower than asked.
// PS3.3 C.11.2.1.2 applies the window as given, so the image is told its range over every
// frame, widened to hold each window it will be asked for (the file's, the presets', each
// frame's own), plus one on each side. The WindowLevel tool's drag speed follows this range.
export function unboundWindows(image, windows) {
  const size = image.getGeometry().getSize();
  const plane = size.get(0) * size.get(1);
  const buffer = image.getBuffer();
  const planes = Math.floor(buffer.length / plane);
  let low = Infinity;
  let high = -Infinity;
  for (let p = 0; p < planes; p += 1) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = p * plane; i < (p + 1) * plane; i += 1) {
      const value = buffer[i];
      if (value < min) min = value;
      if (value > max) max = value;
    }
    const rsi = image.isConstantRSI()
      ? image.getRescaleSlopeAndIntercept()
      : image.getRescaleSlopeAndIntercept(size.offsetToIndex(p * plane));
    const [a, b] = [rsi.apply(min), rsi.apply(max)];
    low = Math.min(low, a, b);
    high = Math.max(high, a, b);
  }
  for (const { center, width } of windows) {
    if (!Number.isFinite(center) || !Number.isFinite(width)) continue;
    low = Math.min(low, center - width / 2);
    high = Math.max(high, center + width / 2);
  }
  if (!Number.isFinite(low)) return;
  const range = { min: low - 1, max: high + 1 };
  image.getRescaledDataRange = () => range;
}

