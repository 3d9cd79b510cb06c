// Polls a status URL every 2 s while a run on the page is active; updates [data-run]
// blocks in place and reloads once when a run it watched ends (to show its results).
(function () {
  const root = document.querySelector("[data-poll-url]");
  if (!root) return;
  const url = root.dataset.pollUrl;
  function set(el, field, text) {
    const node = el.querySelector('[data-f="' + field + '"]');
    if (node && node.textContent !== String(text)) node.textContent = text;
    return node;
  }
  function badge(node, status) {
    if (!node) return;
    node.textContent = status;
    node.className = node.className.replace(/status-\S+/, "status-" + status);
  }
  function update(run) {
    const box = document.querySelector('[data-run="' + run.id + '"]');
    if (!box) return false;
    const wasActive = box.dataset.active === "1";
    badge(box.querySelector('[data-f="run-status"]'), run.status);
    for (const sm of run.submodels) {
      const el = box.querySelector('[data-sm="' + sm.id + '"]');
      if (!el) continue;
      badge(el.querySelector('[data-f="status"]'), sm.status);
      set(el, "eta", sm.eta ? "ETA " + sm.eta : "");
      set(el, "stopped", sm.stopped_epoch ? "stopped early at " + sm.stopped_epoch : "");
      const row = el.querySelector('[data-f="step-row"]');
      if (row) row.hidden = sm.status !== "running";
      set(el, "epoch", sm.epoch); set(el, "epochs", sm.epochs || "?");
      set(el, "step", sm.step); set(el, "steps", sm.steps || "?");
      const eb = el.querySelector('[data-f="epoch-bar"]');
      if (eb) { eb.max = Math.max(1, sm.epochs); eb.value = sm.epoch; }
      const sb = el.querySelector('[data-f="step-bar"]');
      if (sb) { sb.max = Math.max(1, sm.steps); sb.value = sm.step; }
      const f = el.querySelector('[data-f="failure"]');
      if (f) { f.textContent = sm.failure_reason; f.hidden = !sm.failure_reason; }
    }
    const summary = box.querySelector('[data-f="summary"]');
    if (summary) summary.textContent = run.summary;
    const overall = box.querySelector('[data-f="overall-bar"]');
    if (overall) overall.value = run.fraction;
    box.dataset.active = run.active ? "1" : "0";
    return wasActive && !run.active;
  }
  async function poll() {
    let data;
    try {
      const r = await fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
      if (!r.ok || !(r.headers.get("Content-Type") || "").includes("json")) throw new Error(r.status);
      data = await r.json();
    } catch (e) { setTimeout(poll, 5000); return; }
    const runs = Array.isArray(data.runs) ? data.runs : [data];
    let ended = false;
    for (const run of runs) ended = update(run) || ended;
    if (ended) { location.reload(); return; }
    if (runs.some(r => r.active)) setTimeout(poll, 2000);
  }
  if (document.querySelector('[data-run][data-active="1"]')) setTimeout(poll, 2000);
})();
