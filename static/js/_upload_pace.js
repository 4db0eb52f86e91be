// How the uploader paces itself on a township's link. The chunk size belongs to the link,
// not to a file: it doubles after each chunk that arrives whole (fewer round trips, the
// TCP window grows) and falls to a quarter after a failed one (less to lose at the next
// cut). Every file in flight takes the current size for its next chunk. The line under
// the uploader says how fast the bytes go, how long is left, and when the link is lost.
import { t } from "./_common.js";

export const MIN_CHUNK = 128 * 1024;
export const MAX_CHUNK = 4 * 1024 * 1024;
export const FIRST_CHUNK = 512 * 1024;
const SPEED_WINDOW_MS = 8000; // speed over the last few seconds, not since the start

export class UploadPace {
  constructor(statusLine) {
    this.chunk = FIRST_CHUNK;
    this.uploads = new Set(); // tus option objects of the uploads in flight
    this.line = statusLine;
    this.samples = []; // [time, total bytes sent] across every file
    this.sent = new Map(); // file id -> bytes sent
    this.sizes = new Map(); // file id -> bytes in all
    this.paused = false;
  }

  // tus options for Uppy's Tus plugin. tus-js-client calls these as methods of the
  // upload's own options (`this`), whose chunkSize it reads before each PATCH.
  tusOptions() {
    const pace = this;
    return {
      chunkSize: this.chunk,
      onUploadUrlAvailable() {
        pace.uploads.add(this);
        this.chunkSize = pace.chunk;
      },
      onChunkComplete(_size, accepted, total) {
        pace.paused = false;
        pace.chunk = Math.min(MAX_CHUNK, pace.chunk * 2);
        this.chunkSize = pace.chunk;
        if (accepted >= total) pace.uploads.delete(this);
      },
      onShouldRetry(error, _attempt, _options, next) {
        const retry = next(error);
        if (retry) pace.cut();
        return retry;
      },
    };
  }

  cut() {
    this.chunk = Math.max(MIN_CHUNK, Math.floor(this.chunk / 4));
    for (const options of this.uploads) options.chunkSize = this.chunk;
    this.paused = true;
    this.show();
  }

  progress(fileId, sent, total) {
    this.sent.set(fileId, sent);
    this.sizes.set(fileId, total);
    const now = Date.now();
    let all = 0;
    for (const bytes of this.sent.values()) all += bytes;
    this.samples.push([now, all]);
    while (this.samples.length > 2 && now - this.samples[0][0] > SPEED_WINDOW_MS) this.samples.shift();
    this.paused = false;
    this.show();
  }

  finished(fileId) {
    this.sent.delete(fileId);
    this.sizes.delete(fileId);
    if (!this.sizes.size) {
      this.samples = [];
      this.line.textContent = "";
      this.line.dataset.state = "idle";
    }
  }

  show() {
    if (this.paused) {
      this.line.textContent = t("upload_paused");
      this.line.dataset.state = "paused";
      return;
    }
    if (this.samples.length < 2) return;
    const [[t0, b0], [t1, b1]] = [this.samples[0], this.samples[this.samples.length - 1]];
    if (t1 <= t0) return;
    const perSecond = ((b1 - b0) * 1000) / (t1 - t0);
    let left = 0;
    for (const [id, size] of this.sizes) left += size - (this.sent.get(id) || 0);
    const seconds = perSecond > 0 ? Math.ceil(left / perSecond) : null;
    this.line.dataset.state = "sending";
    this.line.textContent = t("upload_speed", {
      speed: (perSecond * 8 / 1e6).toFixed(2),
      left: seconds === null ? "…" : formatDuration(seconds),
    });
  }
}

function formatDuration(seconds) {
  if (seconds < 60) return t("seconds", { n: seconds });
  return t("minutes_seconds", { m: Math.floor(seconds / 60), s: seconds % 60 });
}
