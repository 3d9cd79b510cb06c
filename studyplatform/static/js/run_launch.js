// The launch form's CPU time estimate, redone as the image size, width and epochs change
// (the page gives the estimate for its settings without this script, and the constants).
(function () {
  const box = document.querySelector("[data-estimate]");
  if (!box) return;
  const field = (name) => document.getElementById("id_" + name);
  const size = field("image_size"), width = field("width"), epochs = field("epochs");
  if (!size || !width || !epochs) return;
  const show = (f, text) => { box.querySelector('[data-f="' + f + '"]').textContent = text; };
  function duration(seconds) {  // as worker.formatting.format_duration
    seconds = Math.round(seconds);
    const two = (n) => String(n).padStart(2, "0");
    if (seconds >= 3600) return Math.floor(seconds / 3600) + " h " + two(Math.floor(seconds % 3600 / 60)) + " min";
    if (seconds >= 60) return Math.floor(seconds / 60) + " min " + two(seconds % 60) + " s";
    return seconds + " s";
  }
  function update() {
    const s = Number(size.value), w = Number(width.value), e = Number(epochs.value);
    if (!(s > 0 && w > 0 && e > 0)) return;
    const d = box.dataset;
    const seconds = Number(d.estimate) * (s / d.referenceSize) ** 2 * (w / d.referenceWidth) ** 2 * e;
    show("epochs", e + (e === 1 ? " epoch" : " epochs"));
    show("size", s); show("width", w); show("duration", duration(seconds));
    const warn = seconds > Number(d.warnAfter) && d.gpu !== "1";
    box.classList.toggle("warn", warn);
    box.querySelector('[data-f="warning"]').hidden = !warn;
  }
  for (const input of [size, width, epochs]) input.addEventListener("input", update);
  size.addEventListener("change", update);
})();
