// The hold countdown: counts down from the seconds the server said were left (so a
// wrong clock on the doctor's computer does not matter), announces each minute to
// screen readers, and says so when the hold has run out.
const box = document.getElementById("hold-timer");
if (box) {
  const shown = box.querySelector("[data-countdown]");
  const announce = box.querySelector("[data-countdown-announce]");
  const deadline = Date.now() + Number(box.dataset.secondsLeft || 0) * 1000;
  let lastMinute = null;

  // The sentence comes translated from the page, with {n} where the minutes go.
  const minutesLeft = (minutes) => box.dataset.announceText.replace("{n}", String(minutes));

  const expire = () => {
    box.classList.add("expired");
    box.setAttribute("role", "alert");
    box.textContent = box.dataset.expiredText;
    const submit = document.querySelector("#book-form button[type=submit]");
    if (submit) submit.disabled = true;
  };

  const tick = () => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    if (left === 0) {
      expire();
      return;
    }
    const minutes = Math.floor(left / 60);
    shown.textContent = `${minutes}:${String(left % 60).padStart(2, "0")}`;
    const spoken = Math.ceil(left / 60);
    if (spoken !== lastMinute) {
      lastMinute = spoken;
      announce.textContent = minutesLeft(spoken);
    }
    setTimeout(tick, 1000 - ((deadline - Date.now()) % 1000 || 0));
  };
  tick();
}
