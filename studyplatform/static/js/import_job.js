// Polls an upload's job (a data set import or a run upload: the page's #job box) until it
// is done or failed.
(function () {
  const box = document.getElementById("job");
  const terminal = ["done", "failed"];
  function show(id, url, linkId) {
    document.getElementById(linkId).href = url;
    document.getElementById(id).hidden = false;
  }
  function showOutcome(outcome) {
    document.getElementById("job-outcome-text").textContent = outcome.text;
    document.getElementById("job-skip-intro").hidden = !outcome.reasons.length;
    document.getElementById("job-skips").replaceChildren(...outcome.reasons.map(function (r) {
      const li = document.createElement("li"); li.textContent = r; return li;
    }));
    document.getElementById("job-skipped-files").href = outcome.skipped_url;
    document.getElementById("job-skipped-link").hidden = !outcome.reasons.length;
    document.getElementById("job-outcome").hidden = false;
  }
  async function poll() {
    const r = await fetch(box.dataset.statusUrl, {headers: {"Accept": "application/json"}});
    if (!r.ok) return setTimeout(poll, 3000);
    const s = await r.json();
    const status = document.getElementById("job-status");
    status.textContent = s.status; status.className = "status status-" + s.status;
    const bar = document.getElementById("job-progress");
    bar.max = Math.max(1, s.total); bar.value = s.done;
    document.getElementById("job-count").textContent = s.done + " / " + s.total + (s.total === 1 ? " image" : " images") + " checked";
    // A job refused before any image was read has nothing to count; a data set imported
    // says what it imported and skipped instead.
    document.getElementById("job-counts").hidden = (s.status === "failed" && !s.total) || !!s.outcome;
    if (s.outcome) showOutcome(s.outcome);
    if (s.problems && s.problems.length) {
      const list = document.getElementById("job-problems");
      list.replaceChildren(...s.problems.map(function (p) {
        const li = document.createElement("li"); li.className = "error"; li.textContent = p; return li;
      }));
      document.getElementById("job-refused").hidden = false;
    } else if (s.error) {
      const e = document.getElementById("job-error"); e.textContent = s.error; e.hidden = false;
    }
    if (s.dataset_url) show("job-done", s.dataset_url, "job-dataset");
    if (s.run_url) show("job-run-done", s.run_url, "job-run");
    if (!terminal.includes(s.status)) setTimeout(poll, 1000);
  }
  if (!terminal.includes(document.getElementById("job-status").textContent)) poll();
})();
