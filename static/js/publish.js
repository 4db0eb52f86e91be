// Keeps the down-shared seats at the department's share of the seats per slot while the
// specialist changes the seats, until they type their own number; remote consults are
// down-shared in full.
const form = document.getElementById("publish-form");
if (form) {
  const shares = JSON.parse(form.dataset.shares || "{}");
  const seats = form.querySelector("#seats_per_slot");
  const down = form.querySelector("#down_shared_per_slot");
  const who = form.querySelector("[name=specialist_id]");
  let touched = false;

  const share = () => shares[who ? who.value : ""] || null;
  const service = () => (form.querySelector("[name=service_type]:checked") || {}).value;

  const refresh = () => {
    if (touched || !seats || !down) return;
    const total = Number(seats.value);
    if (!Number.isInteger(total) || total < 1) return;
    if (service() === "remote_consult") {
      down.value = total;
      return;
    }
    const fraction = share();
    if (fraction) down.value = Math.ceil((total * fraction[0]) / fraction[1]);
  };

  down && down.addEventListener("input", () => (touched = true));
  form.addEventListener("change", (event) => {
    if (event.target !== down) refresh();
  });
  seats && seats.addEventListener("input", refresh);
}
