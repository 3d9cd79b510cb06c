/* The analysis dashboard's live update: while the study is open, fetch analysis.json every
   5 seconds and put the new texts ([data-f] elements) and charts ([data-chart]) in place.
   Paused while the tab is hidden; slower after a failure. */
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || live.dataset.poll !== "1") return;
  const state = live.querySelector("[data-live-state]");
  const PERIOD = 5000;

  function apply(data) {
    for (const [key, text] of Object.entries(data.fields || {})) {
      document.querySelectorAll('[data-f="' + key + '"]').forEach(function (node) {
        if (node.textContent !== text) {
          node.textContent = text;
          node.classList.add("changed");
          setTimeout(function () { node.classList.remove("changed"); }, 1500);
        }
      });
    }
    for (const [name, html] of Object.entries(data.charts || {})) {
      const box = document.querySelector('[data-chart="' + name + '"]');
      if (box && box.dataset.html !== html) { box.innerHTML = html; box.dataset.html = html; }
    }
  }

  async function poll() {
    if (document.hidden) { setTimeout(poll, PERIOD); return; }
    try {
      const response = await fetch(live.dataset.url, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(response.status);
      const data = await response.json();
      apply(data);
      if (state) state.textContent = "· updated " + new Date().toLocaleTimeString([], {timeZoneName: "short"});
      if (data.status !== "open") return; // closed meanwhile: nothing more will arrive
      setTimeout(poll, PERIOD);
    } catch (e) {
      if (state) state.textContent = "· update failed, retrying";
      setTimeout(poll, 4 * PERIOD);
    }
  }
  setTimeout(poll, PERIOD);
})();
