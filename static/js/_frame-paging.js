// Frame paging for the case page's dwv viewer: slider, wheel, keys and cine, with the
// "frame n / N" readout. dwv puts the frames of a multi-frame instance on its fourth
// dimension and the slices of a series on its third; its scroll helpers only walk the
// third, so a 10-frame MR showed "1 / 1". Here the dimension that has more than one
// value is paged, whichever it is.

const CINE_FPS = 10; // when the file says no rate: smooth enough, and light on an old PC

// The dimension to page (2 = slices, 3 = frames) and its largest index.
export function pagedDimension(helper) {
  const scroll = helper.getScrollDimIndex();
  if (helper.getMaximumDimValue(scroll) > 0) return { dim: scroll, max: helper.getMaximumDimValue(scroll) };
  const size = helper.getGeometry().getSize();
  for (let dim = 3; dim < size.length(); dim += 1) {
    if (size.get(dim) > 1) return { dim, max: size.get(dim) - 1 };
  }
  return { dim: scroll, max: 0 };
}

export function mountPaging({ controller, slider, readout, stage, playButton, onChange }) {
  let timer = null;

  function state() {
    const ctl = controller();
    if (!ctl) return null;
    const helper = ctl.getPositionHelper();
    const { dim, max } = pagedDimension(helper);
    return { helper, dim, max, value: helper.getCurrentPositionDimValue(dim) };
  }

  function sync() {
    const now = state();
    if (!now) return;
    slider.max = String(now.max);
    slider.value = String(now.value);
    slider.disabled = now.max === 0;
    playButton.disabled = now.max === 0;
    readout.textContent = `${now.value + 1} / ${now.max + 1}`;
    readout.dataset.frame = String(now.value + 1);
    readout.dataset.frames = String(now.max + 1);
    if (onChange) onChange(now.value, now.max);
  }

  function go(value) {
    const now = state();
    if (!now) return;
    const target = Math.min(now.max, Math.max(0, value));
    if (target !== now.value) {
      now.helper.setCurrentPosition(now.helper.getCurrentPositionAtDimValue(now.dim, target));
    }
    sync();
  }

  function step(delta, wrap = false) {
    const now = state();
    if (!now || now.max === 0) return;
    let target = now.value + delta;
    if (wrap) target = (target + now.max + 1) % (now.max + 1);
    go(target);
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    playButton.setAttribute("aria-pressed", "false");
  }

  function play() {
    stop();
    timer = setInterval(() => step(1, true), 1000 / CINE_FPS);
    playButton.setAttribute("aria-pressed", "true");
  }

  slider.addEventListener("input", () => go(Number(slider.value)));
  // Taken before dwv's own wheel handling (capture), which would scroll the wrong axis
  // for frames and a second time for slices.
  stage.addEventListener(
    "wheel",
    (event) => {
      if (!event.deltaY) return;
      event.preventDefault();
      event.stopPropagation();
      step(event.deltaY > 0 ? 1 : -1);
    },
    { capture: true, passive: false },
  );
  stage.tabIndex = 0; // keys reach the image once it has the focus
  stage.addEventListener(
    "keydown",
    (event) => {
      const now = state();
      if (!now) return;
      const moves = {
        ArrowDown: () => step(1),
        ArrowRight: () => step(1),
        PageDown: () => step(10),
        ArrowUp: () => step(-1),
        ArrowLeft: () => step(-1),
        PageUp: () => step(-10),
        Home: () => go(0),
        End: () => go(now.max),
        " ": () => (timer === null ? play() : stop()),
      };
      const move = moves[event.key];
      if (!move) return;
      event.preventDefault();
      event.stopPropagation();
      move();
    },
    { capture: true },
  );
  playButton.addEventListener("click", () => (timer === null ? play() : stop()));

  return { sync, go, stop, playing: () => timer !== null };
}
