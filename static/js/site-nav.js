// The header's menu button: on a narrow screen (a tablet held upright) the main
// navigation folds behind it. Without this script the navigation simply stays open.
const toggle = document.getElementById("nav-toggle");
const nav = document.getElementById("mainnav");
if (toggle && nav) {
  const topbar = toggle.closest(".topbar");
  topbar.classList.add("js-nav");
  const show = (open) => {
    toggle.setAttribute("aria-expanded", String(open));
    topbar.classList.toggle("nav-open", open);
  };
  toggle.addEventListener("click", () => show(toggle.getAttribute("aria-expanded") !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && topbar.classList.contains("nav-open")) {
      show(false);
      toggle.focus();
    }
  });
}
