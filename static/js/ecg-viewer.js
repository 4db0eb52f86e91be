// ECG viewer: the server's SVG on ECG paper, with paper speed and gain, and a caliper.
//
// Mount it on a container, either by markup:
//   <div data-ecg-viewer data-svg-url="/cases/7/ecg/3.svg"></div>
// or from a page script:
//   import { mountEcgViewer } from "ecg-viewer.js";
//   mountEcgViewer(element, { svgUrl: "/cases/7/ecg/3.svg" });
//
// The SVG URL gets `speed` (mm/s) and `gain` (mm/mV) query parameters; the server draws the
// paper for them (render_ecg_svg), so the grid always stays 1 mm and 5 mm. The caliper has
// two vertical markers (interval in ms and rate in bpm) and two horizontal markers
// (amplitude in mV); each is focusable and moves 1 mm per arrow key (5 mm with Shift).
// Texts can be translated through data-label-* attributes (see LABELS).

const SPEEDS = [25, 50];
const GAINS = [5, 10, 20];
const LABELS = {
  speed: "Paper speed",
  gain: "Gain",
  caliper: "Caliper",
  interval: "Interval",
  rate: "rate",
  amplitude: "Amplitude",
  markerTime: "Caliper time marker",
  markerAmplitude: "Caliper amplitude marker",
  loading: "Loading ECG…",
  failed: "The ECG could not be shown",
  hint: "Drag the markers or move them with the arrow keys (Shift: 5 mm).",
};

const STYLE = `
.ecg-viewer{font:14px/1.4 system-ui,sans-serif}
.ecg-viewer .ecg-toolbar{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin:.25rem 0}
.ecg-viewer fieldset{border:0;margin:0;padding:0;display:flex;gap:.25rem;align-items:center}
.ecg-viewer legend{float:left;margin-right:.35rem;font-weight:600}
.ecg-viewer button[aria-pressed]{padding:.15rem .5rem;border:1px solid #888;background:#fff;border-radius:3px;cursor:pointer}
.ecg-viewer button[aria-pressed="true"]{background:#1d4ed8;color:#fff;border-color:#1d4ed8}
.ecg-viewer .ecg-readout{font-variant-numeric:tabular-nums;font-weight:600}
.ecg-viewer .ecg-stage{overflow:auto;max-width:100%;border:1px solid #ccc;background:#fff}
.ecg-viewer .ecg-sheet{position:relative;display:inline-block;line-height:0}
.ecg-viewer .ecg-marker{position:absolute;z-index:2;outline:none;touch-action:none}
.ecg-viewer .ecg-marker-v{top:0;bottom:0;width:11px;margin-left:-5px;cursor:ew-resize}
.ecg-viewer .ecg-marker-h{left:0;right:0;height:11px;margin-top:-5px;cursor:ns-resize}
.ecg-viewer .ecg-marker::after{content:"";position:absolute;background:#1d4ed8}
.ecg-viewer .ecg-marker-v::after{left:5px;top:0;bottom:0;width:1px}
.ecg-viewer .ecg-marker-h::after{top:5px;left:0;right:0;height:1px}
.ecg-viewer .ecg-marker-h::after{background:#047857}
.ecg-viewer .ecg-marker:focus-visible::after,.ecg-viewer .ecg-marker:hover::after{box-shadow:0 0 0 2px rgba(29,78,216,.35)}
.ecg-viewer .ecg-marker-v:focus-visible::after{width:3px;left:4px}
.ecg-viewer .ecg-marker-h:focus-visible::after{height:3px;top:4px}
.ecg-viewer .ecg-hint{color:#555;font-size:12px}
`;

function injectStyle() {
  if (document.getElementById("ecg-viewer-style")) return;
  const style = document.createElement("style");
  style.id = "ecg-viewer-style";
  style.textContent = STYLE;
  document.head.append(style);
}

function labelsFrom(dataset) {
  const labels = {};
  for (const key of Object.keys(LABELS)) {
    const attribute = "label" + key[0].toUpperCase() + key.slice(1);
    if (dataset[attribute]) labels[key] = dataset[attribute];
  }
  return labels;
}

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function choiceGroup(legend, values, unit, current, onChoose) {
  const group = element("fieldset", {}, [element("legend", {}, [legend])]);
  const buttons = values.map((value) => {
    const button = element("button", { type: "button", "aria-pressed": String(value === current), "data-value": String(value) }, [`${value} ${unit}`]);
    button.addEventListener("click", () => onChoose(value));
    return button;
  });
  group.append(...buttons);
  return {
    group,
    select(value) {
      for (const button of buttons) button.setAttribute("aria-pressed", String(Number(button.dataset.value) === value));
    },
  };
}

export function mountEcgViewer(container, options = {}) {
  injectStyle();
  const svgUrl = options.svgUrl || container.dataset.svgUrl;
  if (!svgUrl) throw new Error("mountEcgViewer needs an svgUrl");
  const text = { ...LABELS, ...labelsFrom(container.dataset), ...(options.labels || {}) };
  const state = {
    speed: Number(options.speed || container.dataset.speed || 25),
    gain: Number(options.gain || container.dataset.gain || 10),
    // marker positions in mm of paper, from the sheet's top-left corner
    times: null,
    amplitudes: null,
    width: 0,
    height: 0,
    svg: null,
  };

  container.classList.add("ecg-viewer");
  container.replaceChildren();
  const speedChoice = choiceGroup(text.speed, SPEEDS, "mm/s", state.speed, (value) => {
    state.speed = value;
    speedChoice.select(value);
    load();
  });
  const gainChoice = choiceGroup(text.gain, GAINS, "mm/mV", state.gain, (value) => {
    state.gain = value;
    gainChoice.select(value);
    load();
  });
  const readout = element("output", { class: "ecg-readout", "aria-live": "polite", "aria-label": text.caliper });
  const status = element("p", { class: "ecg-status", role: "status" }, [text.loading]);
  const sheet = element("div", { class: "ecg-sheet" });
  const stage = element("div", { class: "ecg-stage" }, [sheet]);
  container.append(
    element("div", { class: "ecg-toolbar" }, [speedChoice.group, gainChoice.group, readout]),
    status,
    stage,
    element("p", { class: "ecg-hint" }, [text.hint]),
  );

  const markers = [0, 1].map((i) => marker("v", i)).concat([0, 1].map((i) => marker("h", i)));
  let loading = null;

  function marker(kind, index) {
    const node = element("div", {
      class: `ecg-marker ecg-marker-${kind}`,
      tabindex: "0",
      role: "slider",
      "aria-orientation": kind === "v" ? "horizontal" : "vertical",
      "aria-label": `${kind === "v" ? text.markerTime : text.markerAmplitude} ${index + 1}`,
      "data-marker": `${kind}${index + 1}`,
    });
    node.addEventListener("keydown", (event) => {
      const step = event.shiftKey ? 5 : 1;
      const list = kind === "v" ? state.times : state.amplitudes;
      const limit = kind === "v" ? state.width : state.height;
      const moves = kind === "v"
        ? { ArrowLeft: -step, ArrowRight: step, ArrowDown: -step, ArrowUp: step }
        : { ArrowUp: -step, ArrowDown: step, ArrowLeft: -step, ArrowRight: step };
      let next = null;
      if (event.key in moves) next = list[index] + moves[event.key];
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = limit;
      if (next === null || !list) return;
      event.preventDefault();
      list[index] = Math.min(limit, Math.max(0, Math.round(next * 100) / 100));
      place();
    });
    node.addEventListener("pointerdown", (event) => {
      node.setPointerCapture(event.pointerId);
      node.focus();
      event.preventDefault();
    });
    node.addEventListener("pointermove", (event) => {
      if (!node.hasPointerCapture(event.pointerId)) return;
      const box = sheet.getBoundingClientRect();
      const scale = pixelsPerMm();
      if (kind === "v") state.times[index] = clamp((event.clientX - box.left) / scale, state.width);
      else state.amplitudes[index] = clamp((event.clientY - box.top) / scale, state.height);
      place();
    });
    node.addEventListener("pointerup", (event) => node.releasePointerCapture(event.pointerId));
    return node;
  }

  function clamp(value, limit) {
    return Math.min(limit, Math.max(0, Math.round(value * 100) / 100));
  }

  function pixelsPerMm() {
    return state.svg ? state.svg.getBoundingClientRect().width / state.width : 1;
  }

  function measurements() {
    const spanMm = Math.abs(state.times[1] - state.times[0]);
    const intervalMs = (spanMm / state.speed) * 1000;
    const rate = intervalMs > 0 ? 60000 / intervalMs : null;
    const amplitudeMv = Math.abs(state.amplitudes[1] - state.amplitudes[0]) / state.gain;
    return { intervalMs, rate, amplitudeMv };
  }

  function place() {
    if (!state.svg) return;
    const scale = pixelsPerMm();
    const { intervalMs, rate, amplitudeMv } = measurements();
    markers.forEach((node, i) => {
      const vertical = i < 2;
      const mm = vertical ? state.times[i] : state.amplitudes[i - 2];
      node.style[vertical ? "left" : "top"] = `${mm * scale}px`;
      node.setAttribute("aria-valuemin", "0");
      node.setAttribute("aria-valuemax", String(vertical ? state.width : state.height));
      node.setAttribute("aria-valuenow", String(mm));
      node.setAttribute("aria-valuetext", `${mm.toFixed(1)} mm`);
    });
    const rateText = rate === null ? "–" : `${Math.round(rate)} bpm`;
    readout.textContent = `${text.interval} ${Math.round(intervalMs)} ms · ${text.rate} ${rateText} · ${text.amplitude} ${amplitudeMv.toFixed(2)} mV`;
    readout.dataset.intervalMs = String(Math.round(intervalMs));
    readout.dataset.rateBpm = rate === null ? "" : String(Math.round(rate));
    readout.dataset.amplitudeMv = amplitudeMv.toFixed(2);
  }

  async function load() {
    const url = new URL(svgUrl, document.baseURI);
    url.searchParams.set("speed", String(state.speed));
    url.searchParams.set("gain", String(state.gain));
    const request = fetch(url, { credentials: "same-origin", headers: { Accept: "image/svg+xml" } });
    loading = request;
    status.textContent = text.loading;
    container.dataset.state = "loading";
    try {
      const response = await request;
      if (!response.ok) throw new Error(`${response.status}`);
      const source = await response.text();
      if (loading !== request) return; // a newer choice is on its way
      const parsed = new DOMParser().parseFromString(source, "image/svg+xml");
      const svg = parsed.documentElement;
      if (svg.nodeName !== "svg") throw new Error("not SVG");
      const imported = document.importNode(svg, true);
      const [, , width, height] = imported.getAttribute("viewBox").split(/\s+/).map(Number);
      const left = Number(imported.dataset.paperLeft || 10);
      state.width = width;
      state.height = height;
      if (!state.times) {
        state.times = [left + 25, left + 45]; // 800 ms apart at 25 mm/s
        state.amplitudes = [20, 30]; // 1 mV apart at 10 mm/mV
      }
      state.times = state.times.map((mm) => clamp(mm, width));
      state.amplitudes = state.amplitudes.map((mm) => clamp(mm, height));
      if (state.svg) state.svg.replaceWith(imported);
      else sheet.append(imported, ...markers);
      state.svg = imported;
      status.textContent = "";
      container.dataset.state = "ready";
      place();
    } catch (error) {
      if (loading !== request) return;
      status.textContent = `${text.failed} (${error.message})`;
      status.setAttribute("role", "alert");
      container.dataset.state = "error";
    }
  }

  const resize = new ResizeObserver(() => place());
  resize.observe(stage);
  load();

  return {
    setSpeed(value) {
      state.speed = value;
      speedChoice.select(value);
      return load();
    },
    setGain(value) {
      state.gain = value;
      gainChoice.select(value);
      return load();
    },
    measurements,
    destroy() {
      resize.disconnect();
      container.replaceChildren();
    },
  };
}

for (const node of document.querySelectorAll("[data-ecg-viewer]")) mountEcgViewer(node);
