// Print buttons ([data-print]): the Content-Security-Policy runs no inline handlers.
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
