// The window of a frame whose file gives none: that frame's own lowest to highest value
// (after rescale), as the server renders it. dwv's "minmax" spans the whole series or
// multi-frame instance, so a frame quieter than the brightest one came out grey and flat.

// dwv's LINEAR window maps (x - (c - 0.5)) / (w - 1) + 0.5 onto 0..1 (PS3.3 C.11.2.1.2);
// c and w are chosen so that this is (x - low) / (high - low), the server's stretch.
export function minMaxWindow(low, high) {
  const span = Math.max(high - low, 1e-6);
  return { center: (low + high) / 2 + 0.5, width: span + 1 };
}

// The rescaled range of the 2D plane at ``index`` of a monochrome image whose paged
// dimension (slices or frames) is the only one beyond the plane.
export function planeRange(image, index) {
  const size = image.getGeometry().getSize();
  const plane = size.get(0) * size.get(1);
  let position = 0;
  for (let dim = size.length() - 1; dim >= 2; dim -= 1) {
    position = position * size.get(dim) + index.get(dim);
  }
  const buffer = image.getBuffer();
  const start = position * plane;
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
