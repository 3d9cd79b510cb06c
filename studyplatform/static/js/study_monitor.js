// The study monitor: refreshes the per-condition counts every 5 s; reloads on a status change.
document.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
  input.addEventListener("focus", function () { input.select(); });
  input.addEventListener("click", function () { input.select(); });
});
(function () {
  const box = document.querySelector("[data-monitor-url]");
  if (!box) return;
  function poll() {
    fetch(box.dataset.monitorUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (d) {
      if (d.status !== box.dataset.status) { window.location.reload(); return; }
      d.rows.forEach(function (row, i) {
        const tr = box.querySelector('[data-row="' + i + '"]');
        if (!tr) return;
        ["started", "included", "excluded", "taking_part", "freed", "withdrawn", "held", "pilot", "pilot_taking_part", "screen_failed"].forEach(function (k) {
          const cell = tr.querySelector('[data-f="' + k + '"]');
          if (cell) cell.textContent = row[k];
        });
      });
    }).catch(function () {});
  }
  setInterval(poll, 5000);
})();
