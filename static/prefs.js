// The large-text mode (适老化), remembered on this phone. A classic script in <head>, so the
// page is drawn large from the start instead of jumping once the modules have loaded.
(function () {
  const KEY = "large-text";
  const root = document.documentElement;
  let on = false;
  try { on = localStorage.getItem(KEY) === "1"; } catch { /* storage off: standard size */ }
  root.classList.toggle("large", on);
  document.addEventListener("DOMContentLoaded", function () {
    const button = document.getElementById("large-text");
    if (!button) return;
    const show = function () { button.setAttribute("aria-pressed", String(root.classList.contains("large"))); };
    show();
    button.addEventListener("click", function () {
      const large = !root.classList.contains("large");
      root.classList.toggle("large", large);
      try { localStorage.setItem(KEY, large ? "1" : "0"); } catch { /* kept for this page only */ }
      show();
    });
  });
})();
