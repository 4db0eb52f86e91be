// What dwv 0.36 does not read of the grayscale pipeline (PS3.4 N.2, PS3.3 C.11), applied
// to the image's values before its first drawing, as the server applies it
// (telemed/imaging/rendering.py): the Modality LUT Sequence (0028,3000), the VOI LUT
// Sequence (0028,3010), and an enhanced multi-frame file's per-frame rescale (Pixel Value
// Transformation in its functional groups, C.7.6.16.2.9). Its per-frame window (Frame
// VOI LUT, C.7.6.16.2.10) is given by frameWindows, for the page to set on each frame.
//
// Each stored value s of frame f becomes out(s): the Modality LUT's output, or the frame's
// rescale, then, where the file gives a VOI LUT, that LUT's output. The result is written
// back in the image's own buffer as (out - low) * k, k chosen so it fits the buffer's
// type, and dwv is told the rescale (1/k, low), so that its windows, presets and the
// WindowLevel tool work on out(s) itself. With a VOI LUT the default window is the LUT's
// whole output range (0 to 2^n - 1): the LINEAR window that shows out / (2^n - 1).
// A signed value stored in fewer bits than its word is first sign-extended (see greyLuts).

const MODALITY_LUT = "00283000";
const VOI_LUT = "00283010";
const DESCRIPTOR = "00283002";
const DATA = "00283006";
const SHARED_GROUPS = "52009229";
const PER_FRAME_GROUPS = "52009230";
const FRAME_VOI = "00289132";
const PIXEL_TRANSFORM = "00289145";
const WINDOW_CENTER = "00281050";
const WINDOW_WIDTH = "00281051";
const RESCALE_INTERCEPT = "00281052";
const RESCALE_SLOPE = "00281053";

function first(element) {
  if (!element || element.value === undefined) return undefined;
  const value = Array.isArray(element.value) || ArrayBuffer.isView(element.value) ? element.value[0] : element.value;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

// A LUT of a sequence's first item: {count, first, bits, data}, or null.
function lutOf(elements, tag) {
  const sequence = elements[tag];
  const item = sequence && Array.isArray(sequence.value) ? sequence.value[0] : undefined;
  if (!item || !item[DESCRIPTOR] || !item[DATA]) return null;
  const [count, start, bits] = Array.from(item[DESCRIPTOR].value).map(Number);
  const data = Array.from(item[DATA].value).map(Number);
  if (!data.length || !Number.isFinite(bits)) return null;
  return { count: count === 0 ? 65536 : count, first: start, bits, data };
}

// PS3.3 C.11.1.1: values below the first mapped take the first entry, above, the last.
function lookUp(lut, value) {
  const at = Math.min(Math.max(Math.round(value) - lut.first, 0), lut.data.length - 1);
  return lut.data[at];
}

// For each of ``frames`` frames, ``pick`` of the first item of the functional group
// sequence ``tag``: the frame's own group first, else the shared one (as the server).
function perFrame(elements, frames, tag, pick) {
  const found = [];
  let any = false;
  for (let frame = 0; frame < frames; frame += 1) {
    let value = null;
    for (const [groupsTag, own] of [
      [PER_FRAME_GROUPS, true],
      [SHARED_GROUPS, false],
    ]) {
      const groups = elements[groupsTag] && elements[groupsTag].value;
      if (!Array.isArray(groups) || !groups.length) continue;
      const group = own ? groups[Math.min(frame, groups.length - 1)] : groups[0];
      const sequence = group && group[tag] && group[tag].value;
      if (Array.isArray(sequence) && sequence.length) value = pick(sequence[0]);
      if (value) break;
    }
    any ||= value !== null;
    found.push(value);
  }
  return any ? found : null;
}

// Each frame's window from its functional groups ({center, width} or null), or null.
export function frameWindows(elements, frames) {
  return perFrame(elements, frames, FRAME_VOI, (item) => {
    const center = first(item[WINDOW_CENTER]);
    const width = first(item[WINDOW_WIDTH]);
    return center !== undefined && width !== undefined ? { center, width } : null;
  });
}

function frameRescales(elements, frames) {
  return perFrame(elements, frames, PIXEL_TRANSFORM, (item) => {
    const slope = first(item[RESCALE_SLOPE]);
    return slope !== undefined ? { slope, intercept: first(item[RESCALE_INTERCEPT]) ?? 0 } : null;
  });
}

// What a file brings beyond dwv's reading, or null when it brings nothing. ``signed``:
// the bits of a signed value (Bits Stored) when fewer than the word's, whose bits above
// dwv leaves as they are in the file (PS3.5 8.1.1 says to ignore them): a -1 stored in
// 12 bits as 0x0FFF was read as 4095.
export function greyLuts(elements, frames) {
  const modality = lutOf(elements, MODALITY_LUT);
  const voi = lutOf(elements, VOI_LUT);
  const rescales = modality ? null : frameRescales(elements, frames);
  const stored = first(elements["00280101"]);
  const allocated = first(elements["00280100"]);
  const signed = first(elements["00280103"]) === 1 && stored < allocated ? stored : null;
  if (!modality && !voi && !rescales && !signed) return null;
  return { modality, voi, rescales, signed };
}

// The value of the low ``bits`` bits of ``raw`` as a two's complement number.
function signExtended(raw, bits) {
  const value = raw & ((1 << bits) - 1);
  return value & (1 << (bits - 1)) ? value - (1 << bits) : value;
}

// The window that shows a VOI LUT's output as the standard does (c = 2^(n-1), w = 2^n).
export function voiLutWindow(luts) {
  const top = 2 ** luts.voi.bits;
  return { center: top / 2, width: top };
}

function planeRange(buffer, start, end, read) {
  let min = Infinity;
  let max = -Infinity;
  for (let i = start; i < end; i += 1) {
    const value = read(buffer[i]);
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return [min, max];
}

// Applies ``luts`` to the planes of ``image`` not yet done (``done``, {} at first: the
// image UIDs already applied, as a series' slices come one by one). ``Rsi`` is dwv's
// RescaleSlopeAndIntercept.
export function applyGreyLuts(image, luts, done, Rsi) {
  const size = image.getGeometry().getSize();
  const plane = size.get(0) * size.get(1);
  const buffer = image.getBuffer();
  const planes = Math.floor(buffer.length / plane);
  const fileRsi = done.rsi ?? image.getRescaleSlopeAndIntercept(size.offsetToIndex(0));
  const rescaleOf = (p) => {
    const own = luts.rescales && luts.rescales[Math.min(p, luts.rescales.length - 1)];
    return own ? (s) => s * own.slope + own.intercept : (s) => fileRsi.apply(s);
  };
  const room = buffer instanceof Int16Array ? 32767 : buffer instanceof Uint8Array ? 255 : 65535;
  const read = luts.signed ? (raw) => signExtended(raw, luts.signed) : (raw) => raw;
  const onlySigns = !luts.modality && !luts.voi && !luts.rescales;
  if (done.scale === undefined && onlySigns) {
    done.scale = null; // values kept as they are, but for their sign
    done.uids = new Set();
  } else if (done.scale === undefined) {
    // Once, before the first drawing: the output's range and the scale into the buffer.
    let low = 0;
    let high;
    let scale;
    if (luts.voi || luts.modality) {
      high = 2 ** (luts.voi || luts.modality).bits - 1;
      scale = Math.min(1, room / high); // integers that fit are kept exact
    } else {
      low = Infinity;
      high = -Infinity;
      for (let p = 0; p < planes; p += 1) {
        const [min, max] = planeRange(buffer, p * plane, (p + 1) * plane, read);
        const rescale = rescaleOf(p);
        for (const value of [rescale(min), rescale(max)]) {
          low = Math.min(low, value);
          high = Math.max(high, value);
        }
      }
      scale = high > low ? room / (high - low) : 1;
    }
    done.rsi = fileRsi;
    done.low = low;
    done.scale = scale;
    done.uids = new Set();
    image.getMeta().BitsStored = buffer instanceof Uint8Array ? 8 : 16;
    image.setRescaleSlopeAndIntercept(new Rsi(1 / scale, low));
  }
  const { low, scale } = done;
  // A series' slices come one by one (and are put in order among the others): each
  // instance's planes are done once, found by their image UID.
  const fresh = new Set();
  let cache = new Map();
  for (let p = 0; p < planes; p += 1) {
    const uid = image.getImageUid(size.offsetToIndex(p * plane));
    if (done.uids.has(uid)) continue;
    fresh.add(uid);
    const rescale = rescaleOf(p);
    if (luts.rescales) cache = new Map();
    for (let i = p * plane; i < (p + 1) * plane; i += 1) {
      const raw = buffer[i];
      let value = cache.get(raw);
      if (value === undefined) {
        const stored = read(raw);
        if (onlySigns) {
          value = stored;
        } else {
          value = luts.modality ? lookUp(luts.modality, stored) : rescale(stored);
          if (luts.voi) value = lookUp(luts.voi, value);
          value = Math.min(room, Math.max(0, Math.round((value - low) * scale)));
        }
        cache.set(raw, value);
      }
      buffer[i] = value;
    }
  }
  for (const uid of fresh) done.uids.add(uid);
}
