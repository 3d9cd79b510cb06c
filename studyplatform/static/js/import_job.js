// Polls a data set import's status (the page's #job box) until it is done or failed.
(function () {
  const box = document.getElementById("job");
  const terminal = ["done", "failed"];
  async function poll() {
    const r = await fetch(box.dataset.statusUrl, {headers: {"Accept": "application/json"}});
    if (!r.ok) return setTimeout(poll, 3000);
    const s = await r.json();
    const status = document.getElementById("job-status");
    status.textContent = s.status; status.className = "status status-" + s.status;
    const bar = document.getElementById("job-progress");
    bar.max = Math.max(1, s.total); bar.value = s.done;
    document.getElementById("job-count").textContent = s.done + " / " + s.total + " images checked";
    if (s.error) { const e = document.getElementById("job-error"); e.textContent = s.error; e.hidden = false; }
    if (s.dataset_url) { document.getElementById("job-dataset").href = s.dataset_url; document.getElementById("job-done").hidden = false; }
    if (!terminal.includes(s.status)) setTimeout(poll, 1000);
  }
  if (!["done", "failed"].includes(document.getElementById("job-status").textContent)) poll();
})();
