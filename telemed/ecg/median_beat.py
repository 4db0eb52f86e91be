"""Global intervals and axes from a representative (median) beat across all leads.

The way the CSE study and IEC 60601-2-25 define global measurements: one onset and one
offset per wave, common to all leads, found on the median beat of every lead together.

- Beats are aligned on their R peaks; beats whose RR differs from the median by more
  than 20 % (ectopics, missed detections) are left out. Each lead's median beat is the
  sample-wise median of the remaining beats (0.5–45 Hz, zero-phase).
- QRS onset and offset: where the spatial velocity (the length of the vector of every
  lead's slope) rises above, and falls back under, 4 % of the way from its noise floor
  to its QRS peak.
- T end: per lead, the tangent at the steepest descent after the T peak, crossed with
  the isoelectric level (the PR segment), on the 0.05 Hz median beat; the global T end
  is the latest of the leads that agree (within 40 ms of their median), as the CSE
  "latest offset" rule.
- P wave: the peak of the leads' RMS before the QRS; onset and offset where it falls to
  a tenth of its height over the floor. No P wave (atrial fibrillation, noise): no P, PR.
- A ventricular pacing spike before the QRS is stepped over (``_after_pacing_spike``).
- Axes: frontal plane, from the net areas of leads I and aVF over each wave
  (aVF = √3/2 of the vector's vertical component).

Pure numpy/scipy on arrays; ``measure`` finds the R peaks and calls ``delineate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfiltfilt

# share of the QRS peak spatial velocity above its floor that marks QRS onset and offset
QRS_THRESHOLD = 0.04
# high-pass corner of the filter before averaging (Hz)
LOW_CUT_HZ = 0.5
ST_LOW_CUT_HZ = 0.05
# share of the P wave's RMS height above its floor that marks its onset and offset
P_THRESHOLD = 0.1


@dataclass(frozen=True)
class Fiducials:
    """Sample indexes in the median beat (None where not found)."""

    p_on: int | None
    p_off: int | None
    qrs_on: int
    qrs_off: int
    t_end: int | None
    paced: bool = False  # a pacing spike was found before the QRS


def band_pass(samples: np.ndarray, rate: float, low: float | None = None, high: float = 45.0):
    low = LOW_CUT_HZ if low is None else low
    high = min(high, rate * 0.45)
    sos = butter(2, [low, high], btype="band", fs=rate, output="sos")
    return sosfiltfilt(sos, samples, axis=-1)


def median_beat(
    filtered: np.ndarray, peaks: np.ndarray, pre: int, post: int
) -> tuple[np.ndarray, np.ndarray]:
    """(leads × window median beat, beats × leads × window aligned beats)."""
    length = filtered.shape[1]
    chosen = [p for p in peaks if p - pre >= 0 and p + post <= length]
    beats = np.stack([filtered[:, p - pre : p + post] for p in chosen])
    return np.median(beats, axis=0), beats


def _ms(milliseconds: float, rate: float) -> int:
    """Samples in ``milliseconds`` at ``rate`` (at least one)."""
    return max(1, round(milliseconds * rate / 1000.0))


def delineate(
    beat: np.ndarray, rate: float, r_index: int, st_beat: np.ndarray | None = None
) -> Fiducials | None:
    """Global fiducial points of a median beat (leads × samples), R peak at ``r_index``.

    ``st_beat`` is the same median beat filtered from ``ST_LOW_CUT_HZ``: a 0.5 Hz
    high-pass bends the ST segment and T wave (IEC 60601-2-25 asks 0.05 Hz for them),
    so the T end is found on it; P and QRS on ``beat``, steadier against baseline sway.
    """
    count = beat.shape[1]
    velocity = np.sqrt((np.gradient(beat, axis=1) ** 2).sum(axis=0))
    around = slice(max(0, r_index - _ms(60, rate)), min(count, r_index + _ms(60, rate)))
    peak = around.start + int(np.argmax(velocity[around]))
    top = velocity[peak]
    floor = float(np.percentile(velocity, 20))
    if top <= floor * 1.5:
        return None
    threshold = floor + QRS_THRESHOLD * (top - floor)
    hold = _ms(8, rate)

    onset = peak
    earliest = max(1, r_index - _ms(150, rate))
    while onset > earliest and not (velocity[max(0, onset - hold) : onset] < threshold).all():
        onset -= 1
    before_spike = onset
    onset, paced = _after_pacing_spike(velocity, onset, top, floor, rate)
    offset = max(peak, onset)
    latest = min(count - hold - 1, r_index + _ms(200, rate))
    while offset < latest and not (velocity[offset : offset + hold] < threshold).all():
        offset += 1

    st = beat if st_beat is None else st_beat
    st_level = np.median(
        st[:, max(0, before_spike - _ms(20, rate)) : max(1, before_spike - _ms(4, rate))], axis=1
    )
    t_end = _t_end(st - st_level[:, None], rate, offset)
    # the atrial wave ends before the pacing spike, not before the paced QRS
    p_on, p_off = _p_wave(beat, rate, before_spike)
    return Fiducials(p_on, p_off, onset, offset, t_end, paced)


def _after_pacing_spike(
    velocity: np.ndarray, onset: int, top: float, floor: float, rate: float
) -> tuple[int, bool]:
    """A ventricular pacing spike: a burst of at most 30 ms (the 45 Hz low-pass widens
    it) at the start of the complex, at least 4 ms back near the floor, then the (wide)
    paced QRS, which starts there."""
    quiet = floor + 0.15 * (top - floor)
    limit = min(len(velocity) - 1, onset + _ms(50, rate))
    still = _ms(4, rate)
    index = onset + 1
    while index < limit and velocity[index] < quiet:  # the slow start before the burst
        index += 1
    burst_start = index
    while index < limit:
        if (velocity[index : index + still] < quiet).all():
            break
        index += 1
    burst = velocity[burst_start:index]
    if index >= limit or index - burst_start > _ms(30, rate) or burst.max(initial=0) < 0.5 * top:
        return onset, False
    after = index + still
    while after < limit and velocity[after] < quiet:
        after += 1
    if velocity[after : after + _ms(40, rate)].max(initial=0) < 0.3 * top:
        return onset, False
    return after, True


def _t_end(beat: np.ndarray, rate: float, qrs_off: int) -> int | None:
    count = beat.shape[1]
    start = qrs_off + _ms(60, rate)
    stop = count - _ms(10, rate)
    if stop - start < _ms(80, rate):
        return None
    ends = []
    for lead in beat:
        segment = lead[start:stop]
        peak = start + int(np.argmax(np.abs(segment)))
        amplitude = lead[peak]
        if abs(amplitude) < 60.0:  # µV: too flat for a tangent
            continue
        slope = np.gradient(lead)
        after = slice(peak, min(stop, peak + _ms(220, rate)))
        # steepest return towards the baseline
        descent = -np.sign(amplitude) * slope[after]
        if len(descent) < 3 or descent.max() <= 0:
            continue
        steepest = after.start + int(np.argmax(descent))
        end = steepest - lead[steepest] / slope[steepest]
        if steepest < end < count:
            ends.append(end)
    if not ends:
        return None
    ends_arr = np.asarray(ends)
    agreeing = ends_arr[np.abs(ends_arr - np.median(ends_arr)) <= _ms(40, rate)]
    return round(float((agreeing if len(agreeing) else ends_arr).max()))


def _p_wave(beat: np.ndarray, rate: float, qrs_on: int) -> tuple[int | None, int | None]:
    level = beat[:, max(0, qrs_on - _ms(12, rate))][:, None]
    rms = np.sqrt(((beat - level) ** 2).mean(axis=0))
    start = max(0, qrs_on - _ms(320, rate))
    stop = qrs_on - _ms(30, rate)
    if stop - start < _ms(60, rate):
        return None, None
    window = rms[start:stop]
    peak = start + int(np.argmax(window))
    floor = float(np.min(rms[start : peak + 1]))
    height = rms[peak] - floor
    if height < 25.0 or peak - start < _ms(15, rate):  # µV: no P wave to speak of
        return None, None
    threshold = floor + P_THRESHOLD * height
    onset = peak
    while onset > start and rms[onset] > threshold:
        onset -= 1
    offset = peak
    while offset < qrs_on - _ms(4, rate) and rms[offset] > threshold:
        offset += 1
    if onset <= start:  # the wave did not come back down inside the window
        return None, None
    return onset, offset


def frontal_axis(lead_i: np.ndarray, lead_avf: np.ndarray) -> int | None:
    """Degrees (−90 to 180) of the net vector; None when both areas are negligible."""
    x, y = float(lead_i.sum()), float(lead_avf.sum()) * 2 / math.sqrt(3)
    if math.hypot(x, y) < 1e-6:
        return None
    angle = math.degrees(math.atan2(y, x))
    return round(angle if angle >= -90 else angle + 360)
