// The case page: resumable uploads (Uppy + tus) and the DICOM viewer (dwv) reading the
// case's DICOMweb. Instances are asked for in Explicit VR Little Endian, so the server
// decodes compressed syntaxes and the browser needs no codecs.
//
// The uploader and the viewer are most of this page's weight, and a series is many
// megabytes: the uploader's code comes only to a page that can attach files, the viewer's
// and the series only when a series is opened. The reading side's page opens the first
// series by itself (data-autoload); the requesting side, often on a slow rural link, sees
// the thumbnails and opens a series when it wants to.
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";
import { csrfToken, t } from "./_common.js";
import { UploadPace } from "./_upload_pace.js";
import { mountPaging } from "./_frame-paging.js";
import { minMaxWindow, planeNumber, planeRange, unboundWindows } from "./_frame-window.js";
import { applyGreyLuts, frameWindows, greyLuts, voiLutWindow } from "./_grey-luts.js";
import { overlayCanvas, overlayPlanes, paintOverlay } from "./_overlays.js";
import "../css/case.css";

// Window/level presets by modality (centre, width in HU for CT).
const PRESETS = {
  CT: {
    "soft tissue": [40, 400],
    lung: [-600, 1500],
    bone: [500, 2000],
    brain: [40, 80],
    liver: [60, 160],
  },
};

// Files in flight at once: while one waits for its chunk's answer, the others send.
const FILES_IN_FLIGHT = 3;

function resultItem(list, text, refused) {
  const item = document.createElement("li");
  item.textContent = text;
  item.className = refused ? "refused" : "stored";
  list.appendChild(item);
}

async function uploaderModules() {
  const chinese = document.documentElement.lang.startsWith("zh");
  const [core, dashboard, tus, locale] = await Promise.all([
    import("@uppy/core"),
    import("@uppy/dashboard"),
    import("@uppy/tus"),
    chinese ? import("@uppy/locales/lib/zh_CN.js") : null, // Uppy speaks English by itself
  ]);
  return {
    Uppy: core.default,
    Dashboard: dashboard.default,
    Tus: tus.default,
    locale: locale ? locale.default : undefined,
  };
}

// The server's words for a refusal ({"error": {"message"}}), or null when it said none.
function serverMessage(response) {
  if (!response) return null;
  try {
    const body = JSON.parse(response.getBody());
    return (body && body.error && body.error.message) || null;
  } catch {
    return null;
  }
}

// A file the server refused for what it is (a 4xx answer other than a conflict of offsets,
// a lock or a rate limit): sending it again changes nothing, so it is not offered again.
function refusedForContent(status) {
  return status >= 400 && status < 500 && ![408, 409, 423, 429].includes(status);
}

function mountUploader(element, resultsList, { Uppy, Dashboard, Tus, locale }) {
  const purpose = element.dataset.purpose;
  const language = document.documentElement.lang || "zh-Hans";
  const uppy = new Uppy({
    id: `uploader-${purpose}`,
    ...(locale ? { locale } : {}),
    autoProceed: false,
    meta: { case_id: element.dataset.case, purpose },
  });
  uppy.use(Dashboard, {
    inline: true,
    target: element,
    height: 260,
    proudlyDisplayPoweredByUppy: false,
    showProgressDetails: true,
    note: purpose === "dicom" ? t("dicom_note") : t("ecg_note"),
  });
  const line = document.createElement("p");
  line.className = "upload-link";
  line.setAttribute("role", "status");
  line.dataset.state = "idle";
  resultsList.before(line);
  const pace = new UploadPace(line);
  uppy.use(Tus, {
    endpoint: element.dataset.endpoint,
    ...pace.tusOptions(),
    limit: FILES_IN_FLIGHT,
    // A township link comes back after seconds: retry soon, and keep retrying a while.
    retryDelays: [0, 1000, 2000, 3000, 5000, 5000, 10000, 10000, 20000, 30000],
    // The page's language, not the browser's: the server words its refusals in it.
    headers: { "X-CSRFToken": csrfToken(), "Accept-Language": language },
    removeFingerprintOnSuccess: true,
    // Called once tus-js-client has given up, before Uppy shows the error: the server's
    // own words replace tus's (which carry the upload's address and the raw answer).
    onError(error) {
      const response = error && error.originalResponse;
      const status = response ? response.getStatus() : 0;
      if (refusedForContent(status)) {
        error.refused = true;
        error.message = serverMessage(response) || t("upload_failed", { status });
      } else if (status) {
        error.message = serverMessage(response) || t("upload_failed", { status });
      } else {
        error.message = t("upload_network");
      }
    },
    allowedMetaFields: ["case_id", "purpose", "filename", "name"],
    withCredentials: true,
  });
  uppy.on("file-added", (file) => {
    uppy.setFileMeta(file.id, { filename: file.name });
  });
  uppy.on("upload-progress", (file, progress) => {
    pace.progress(file.id, progress.bytesUploaded, progress.bytesTotal);
  });
  window.addEventListener("offline", () => pace.cut());
  uppy.on("upload-success", async (file, response) => {
    pace.finished(file.id);
    const url = response.uploadURL;
    try {
      const status = await fetch(url, {
        headers: { Accept: "application/json", "Accept-Language": language },
        credentials: "same-origin",
      });
      const body = await status.json();
      for (const outcome of (body.result && body.result.files) || []) {
        const refused = outcome.status === "refused";
        resultItem(
          resultsList,
          `${outcome.filename}: ${t(`outcome_${outcome.status}`)}${outcome.reason ? " — " + outcome.reason : ""}`,
          refused,
        );
      }
    } catch (error) {
      resultItem(resultsList, `${file.name}: uploaded`, false);
    }
  });
  uppy.on("upload-error", (file, error) => {
    pace.finished(file.id);
    const message = error && error.message ? error.message : t("upload_network");
    if (!error || !error.refused) {
      // The link failed: Uppy keeps the file with its retry button.
      resultItem(resultsList, `${file.name}: ${message}`, true);
      return;
    }
    // Refused for its content: the reason stays in the list under the uploader, and the
    // file leaves the uploader, so neither its retry button nor "Retry all" sends it again.
    // Its name is already in the server's words (which name the file).
    resultItem(resultsList, `${t("outcome_refused")}: ${message}`, true);
    setTimeout(() => {
      if (uppy.getFile(file.id)) uppy.removeFile(file.id);
      // The status bar's "Retry" follows Uppy's last error: it stays only while a file
      // that failed on the link is there to be sent again.
      if (!uppy.getFiles().some((other) => other.error)) uppy.setState({ error: null });
    }, 0);
  });
  uppy.on("complete", (result) => {
    document.body.dataset.uploadsComplete = String(
      Number(document.body.dataset.uploadsComplete || 0) + result.successful.length,
    );
    if (result.successful.length) {
      const reload = document.createElement("a");
      reload.href = window.location.pathname;
      reload.textContent = t("show_new_files");
      reload.id = "show-new-files";
      resultsList.appendChild(reload);
    }
  });
  return uppy;
}

// -- viewer -------------------------------------------------------------------------------

// Builds the viewer with the dwv module; returns the function that opens a series.
function mountViewer(
  viewer,
  { App, AppOptions, ViewConfig, ToolConfig, WindowLevel, RescaleSlopeAndIntercept },
) {
  const root = viewer.dataset.dicomweb;
  const status = document.getElementById("viewer-status");
  const slider = document.getElementById("frame-slider");
  const frameOut = document.getElementById("frame-number");
  const presets = document.getElementById("wl-preset");
  const app = new App();
  const options = new AppOptions({ "*": [new ViewConfig("layerGroup0")] });
  options.tools = {
    Scroll: new ToolConfig(),
    WindowLevel: new ToolConfig(),
    ZoomAndPan: new ToolConfig(),
    Draw: new ToolConfig(["Ruler"]),
  };
  app.init(options);
  let currentDataId = null;
  // What the opened series brings beyond dwv's reading (its Modality and VOI LUT
  // Sequences, per-frame rescales, signed values in fewer bits than their word: see
  // _grey-luts.js), and which of its instances it has been applied to.
  let luts = null;
  let lutsDone = {};

  function viewController() {
    const group = app.getLayerGroupByDivId("layerGroup0");
    const layer = group && group.getActiveViewLayer();
    return layer ? layer.getViewController() : null;
  }

  // An enhanced multi-frame file's frames are shown each at its own window (its functional
  // groups' Frame VOI LUT), and a file without any window frame by frame at that frame's
  // own range, as the server renders them, until the reader picks a preset or drags the
  // window. windowFollows: "file", "minmax" or null (the reader's choice holds).
  let windowFollows = null;
  let fileWindows = null; // per frame, from the functional groups
  let settingWindow = false;
  function applyFrameWindow() {
    const controller = viewController();
    const data = currentDataId === null ? null : app.getData(currentDataId);
    if (!windowFollows || !controller || !data || !data.image.isMonochrome()) return;
    let wl;
    if (windowFollows === "file") {
      const number = planeNumber(data.image, controller.getCurrentIndex());
      wl = fileWindows && fileWindows[Math.min(number, fileWindows.length - 1)];
      if (!wl) return;
    } else {
      const { low, high } = planeRange(data.image, controller.getCurrentIndex());
      wl = minMaxWindow(low, high);
    }
    settingWindow = true;
    try {
      controller.setWindowLevel(new WindowLevel(wl.center, wl.width));
    } finally {
      settingWindow = false;
    }
  }
  app.addEventListener("wlchange", () => {
    if (!settingWindow) windowFollows = null;
  });

  // The windows the file and the presets give, applied as given (see unboundWindows);
  // run again once every frame is in, then the shown window is set anew unbounded.
  function unbound() {
    const controller = viewController();
    const data = currentDataId === null ? null : app.getData(currentDataId);
    if (!controller || !data || !data.image.isMonochrome()) return;
    const windows = [];
    const meta = data.image.getMeta();
    for (const preset of Object.values(meta.windowPresets || {})) {
      for (const wl of preset.wl || []) windows.push(wl);
    }
    for (const [center, width] of Object.values(PRESETS[controller.getModality()] || {})) {
      windows.push({ center, width });
    }
    if (luts && luts.voi) windows.push(voiLutWindow(luts));
    for (const wl of fileWindows || []) if (wl) windows.push(wl);
    unboundWindows(data.image, windows);
    const name = controller.getCurrentWindowPresetName();
    settingWindow = true;
    try {
      if (windowFollows) applyFrameWindow();
      else if (name && name !== "manual" && name !== "minmax") controller.setWindowLevelPreset(name);
    } finally {
      settingWindow = false;
    }
  }

  // Overlay planes (60xx) painted over the image after each of dwv's drawings; the
  // button shows or hides them (aria-pressed), and is off for a file without any.
  const overlayButton = document.getElementById("overlays");
  let overlays = null; // image-sized canvases by frame (0-based), or null
  let overlaysShown = true;
  function setOverlays(data) {
    overlays = null;
    const planes = data ? overlayPlanes(data.meta) : [];
    if (planes.length) {
      const size = data.image.getGeometry().getSize();
      overlays = new Map();
      for (const frame of new Set(planes.map((plane) => plane.frame))) {
        const own = planes.filter((plane) => plane.frame === frame);
        overlays.set(frame, overlayCanvas(own, size.get(0), size.get(1)));
      }
    }
    overlayButton.disabled = overlays === null;
    overlayButton.setAttribute("aria-pressed", String(overlays !== null && overlaysShown));
    viewer.dataset.overlays = overlays === null ? "0" : String(planes.length);
    if (overlays) redraw(); // dwv drew the first frame before the overlays were known
  }
  app.addEventListener("renderend", () => {
    const controller = viewController();
    const data = currentDataId === null ? null : app.getData(currentDataId);
    if (!overlays || !overlaysShown || !controller || !data) return;
    const number = planeNumber(data.image, controller.getCurrentIndex());
    const overlay = overlays.get(number); // the planes of the frame shown (Image Frame Origin)
    const canvas = document.querySelector("#layerGroup0 canvas");
    if (overlay && canvas) paintOverlay(canvas, overlay);
  });
  function redraw() {
    const group = app.getLayerGroupByDivId("layerGroup0");
    const layer = group && group.getActiveViewLayer();
    if (layer) layer.draw();
  }
  overlayButton.addEventListener("click", () => {
    overlaysShown = !overlaysShown;
    overlayButton.setAttribute("aria-pressed", String(overlaysShown));
    redraw();
  });

  const paging = mountPaging({
    controller: viewController,
    slider,
    readout: frameOut,
    stage: document.getElementById("layerGroup0"),
    playButton: document.getElementById("cine"),
    onChange: applyFrameWindow,
  });
  const syncSlider = () => paging.sync();

  let shown = false; // did this opening put an image up?
  app.addEventListener("load", (event) => {
    shown = true;
    currentDataId = event.dataid;
    setOverlays(app.getData(event.dataid));
    const controller = viewController();
    presets.replaceChildren();
    const extra = controller ? PRESETS[controller.getModality()] : undefined;
    if (controller && luts && luts.voi) {
      const { center, width } = voiLutWindow(luts);
      controller.addWindowLevelPresets({ voilut: { wl: [new WindowLevel(center, width)], name: "voilut" } });
    }
    if (extra) {
      const added = {};
      for (const [name, [center, width]] of Object.entries(extra)) {
        added[name] = { wl: [new WindowLevel(center, width)], name };
      }
      controller.addWindowLevelPresets(added);
    }
    if (controller) {
      for (const name of controller.getWindowLevelPresetsNames()) {
        const option = document.createElement("option");
        option.value = name;
        // Preset names are the viewer's codes ("minmax"): said in words where we have them;
        // a name a file brings along is shown as it is.
        const key = `preset_${name.replace(/\W+/g, "_")}`;
        const word = t(key);
        option.textContent = word === key ? name : word;
        if (word === key) option.translate = false; // the file's own name for its window
        presets.appendChild(option);
      }
    }
    app.setTool("Scroll");
    if (controller && luts && luts.voi) {
      // A VOI LUT is the file's own choice of display: shown first, as the server does.
      settingWindow = true;
      try {
        controller.setWindowLevelPreset("voilut");
      } finally {
        settingWindow = false;
      }
      presets.value = "voilut";
    }
    if (fileWindows) windowFollows = "file";
    else if (controller && controller.getCurrentWindowPresetName() === "minmax") windowFollows = "minmax";
    else windowFollows = null;
    unbound();
    syncSlider();
  });
  // Slices keep arriving after the first is shown: follow them, then say when all are in.
  app.addEventListener("loaditem", (event) => {
    // Before dwv draws the item: its values through the file's LUTs, if it has any.
    const data = app.getData(event.dataid);
    if (event.isfirstitem) {
      const frames = data ? Number((data.meta["00280008"] || {}).value?.[0]) || 1 : 1;
      luts = data ? greyLuts(data.meta, frames) : null;
      fileWindows = data ? frameWindows(data.meta, frames) : null;
      lutsDone = {};
    }
    if (luts && data && data.image.isMonochrome()) {
      applyGreyLuts(data.image, luts, lutsDone, RescaleSlopeAndIntercept);
    }
    syncSlider();
  });
  app.addEventListener("loadend", () => {
    if (shown) unbound();
    syncSlider();
    // dwv ends some loads it cannot show (a 1-bit segmentation) without an error: say so
    // rather than leave "Loading… 100%" up for good.
    if (!shown && !viewer.dataset.error) {
      viewer.dataset.error = "nothing shown";
      status.textContent = t("not_shown");
    } else if (!viewer.dataset.error) {
      status.textContent = t("loaded");
    }
    viewer.dataset.loaded = "1";
  });
  app.addEventListener("positionchange", syncSlider);
  app.addEventListener("error", (event) => {
    const reason = (event.error && event.error.message) || event.message || String(event.error);
    status.textContent = t("load_failed", { reason });
    viewer.dataset.error = reason;
    console.warn("viewer error", reason, event.source && event.source.url);
  });
  app.addEventListener("loadprogress", (event) => {
    status.textContent = t("loading_percent", { percent: Math.round(event.loaded || 0) });
  });

  presets.addEventListener("change", () => {
    app.setWindowLevelPreset(presets.value);
    windowFollows = presets.value === "minmax" ? "minmax" : null;
    applyFrameWindow();
  });
  document.getElementById("reset-view").addEventListener("click", () => app.resetZoomPan());
  for (const button of viewer.querySelectorAll("[data-tool]")) {
    button.addEventListener("click", () => {
      const tool = button.dataset.tool;
      if (tool === "Ruler") {
        app.setTool("Draw");
        app.setToolFeatures({ shapeName: "Ruler" });
      } else {
        app.setTool(tool);
      }
      viewer.dataset.tool = tool;
    });
  }

  // The ruler's length as dwv quantifies it: mm from Pixel Spacing, or pixels when the
  // file has none (said so beside the number, so no one reads pixels as millimetres).
  const measurement = document.getElementById("measurement");
  function showLength(event) {
    const annotation = event && event.data;
    const length = annotation && annotation.quantification && annotation.quantification.length;
    if (!length || !Number.isFinite(length.value)) return;
    const inMm = length.unit === "unit.mm";
    measurement.textContent = inMm
      ? t("length_mm", { value: length.value.toFixed(1) })
      : t("length_px", { value: length.value.toFixed(1) });
    viewer.dataset.length = length.value.toFixed(2);
    viewer.dataset.lengthUnit = inMm ? "mm" : "px";
  }
  app.addEventListener("annotationadd", showLength);
  app.addEventListener("annotationupdate", showLength);

  function openSeries(item) {
    const sops = item.dataset.instances.split(",");
    const base = `${root}/studies/${item.dataset.study}/series/${item.dataset.series}/instances/`;
    paging.stop();
    shown = false;
    delete viewer.dataset.error;
    app.reset();
    setOverlays(null);
    viewer.dataset.loaded = "";
    measurement.textContent = "–";
    status.textContent = t("loading");
    for (const other of document.querySelectorAll("#series-list .series")) {
      other.classList.toggle("active", other === item);
    }
    app.loadURLs(
      sops.map((sop) => base + sop),
      {
        requestHeaders: [
          {
            name: "Accept",
            value: "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
          },
        ],
        withCredentials: true,
      },
    );
  }

  window.addEventListener("resize", () => app.onResize());
  window.telemedViewer = { app, current: () => currentDataId };
  return openSeries;
}

function offerSeries(viewer) {
  const status = document.getElementById("viewer-status");
  let mounted = null; // the viewer, once its module has come
  function open(item) {
    if (item.dataset.decodable !== "1") {
      status.textContent = t("undisplayable");
      return;
    }
    // dwv reads a SEG's bits as an image and never finishes: refused in words instead.
    if (item.dataset.modality === "SEG") {
      status.textContent = t("segmentation_refused");
      viewer.dataset.refused = "segmentation";
      return;
    }
    delete viewer.dataset.refused;
    status.textContent = t("viewer_loading");
    mounted ??= import("dwv").then((dwv) => mountViewer(viewer, dwv));
    mounted.then(
      (openSeries) => openSeries(item),
      (error) => {
        mounted = null; // offline for a moment: the next click tries again
        status.textContent = t("viewer_failed", { reason: error.message || error });
      },
    );
  }
  const items = Array.from(document.querySelectorAll("#series-list .series"));
  for (const item of items) {
    item.querySelector(".open-series").addEventListener("click", () => open(item));
  }
  const first = items.find((item) => item.dataset.decodable === "1");
  if (first && viewer.dataset.autoload === "1") open(first);
}

const uploader = document.getElementById("uploader");
const ecgUploader = document.getElementById("ecg-uploader");
if (uploader || ecgUploader) {
  uploaderModules().then(
    (modules) => {
      if (uploader) mountUploader(uploader, document.getElementById("upload-results"), modules);
      if (ecgUploader) {
        mountUploader(ecgUploader, document.getElementById("ecg-upload-results"), modules);
      }
    },
    (error) => {
      for (const element of [uploader, ecgUploader]) {
        if (element) element.textContent = t("uploader_failed", { reason: error.message || error });
      }
    },
  );
}
const viewer = document.getElementById("viewer");
if (viewer) offerSeries(viewer);
