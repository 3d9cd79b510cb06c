// The participant's trials: one image at a time, Real / AI by button or by the study's two
// keys (each answer button's data-keys: R and A in English), the response time from the
// moment the image is displayed, the next image preloaded. A paired study (two images side
// by side, "which one is the real photograph?") answers Left / Right (F or ←, J or →): its
// trials carry pair_urls, shown in the images marked data-stimulus="left" and "right". A
// rating study (ACR) answers 1 to 5 by button or digit key, the same way (its preview
// trials have no truth: no feedback).
// HYPE_time trial (survey/hype.py) carries its own exposure_ms, set by the server's
// staircase, and mask_urls: the backward masks shown one after the other, MASK_MS each
// (rounded to whole frames), on the frame the image is hidden. Each answer is posted once (buttons are
// disabled while it travels); if the post fails the same answer can be sent again (the
// server stores it once). Without this script the page still works as plain forms. Every
// word shown comes from the page or the server, in the study's language.
(function () {
  "use strict";
  const root = document.getElementById("study");
  if (!root) return;
  root.classList.add("keys-answer"); // the keys work from here on: the page may name them
  const preview = root.dataset.preview === "1";
  const exposureMs = parseInt(root.dataset.exposureMs || "0", 10);
  const keys = {};
  const numbers = new Intl.NumberFormat(document.documentElement.lang || undefined, { useGrouping: false });
  const answerUrl = root.dataset.answerUrl;
  const form = document.getElementById("answer-form");
  const imgs = Array.from(root.querySelectorAll("img[data-stimulus]"));
  const mask = document.getElementById("mask");
  const trialBox = document.getElementById("trial");
  const instructions = document.getElementById("instructions");
  const feedbackBox = document.getElementById("feedback");
  const errorBox = document.getElementById("error");
  const progress = document.getElementById("progress");
  const buttons = Array.from(form.querySelectorAll("button[name=answer]"));
  buttons.forEach(function (b) {
    (b.dataset.keys || "").split(" ").forEach(function (k) { if (k) keys[k.toLowerCase()] = b.value; });
  });
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const previewTrials = preview ? JSON.parse(document.getElementById("preview-trials").textContent) : null;
  const previewSentences = preview ? JSON.parse(document.getElementById("feedback-sentences").textContent) : null;
  let current = JSON.parse(document.getElementById("trial-data").textContent);
  let shownAt = null;
  let busy = false;
  let pending = null;
  let display = null;
  let continueWith = null;
  const previewAnswers = [];
  const preloaded = new Map();
  const MASK_MS = 30;
  const backmask = document.getElementById("backmask");
  // What the server wrote on this page about the last plain-form answer (not stored; a
  // practice answer's feedback) concerns the trial it shows: gone once that one is
  // answered, and not said again by a reload.
  const serverNotices = Array.from(document.querySelectorAll(".server-notice"));
  const query = new URLSearchParams(window.location.search);
  if (query.has("not_stored")) {
    query.delete("not_stored");
    const rest = query.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }

  function field(name) { return root.querySelector('[data-f="' + name + '"]'); }
  function preload(url) {
    if (!url || preloaded.has(url)) return;
    const image = new Image();
    image.src = url;
    preloaded.set(url, image);
  }
  function enable(on) { buttons.forEach(function (b) { b.disabled = !on; }); }
  // The trial's image URLs in the order of imgs: one image, or a pair's left and right.
  function stimulusUrls(trial) {
    if (!trial.pair_urls) return [trial.image_url];
    return imgs.map(function (im) { return trial.pair_urls[im.dataset.stimulus]; });
  }
  function showImages(on) { imgs.forEach(function (im) { im.style.visibility = on ? "visible" : "hidden"; }); }
  function load(im, url) {
    return new Promise(function (resolve, reject) {
      if (im.getAttribute("src") === url && im.complete && im.naturalWidth) return resolve();
      im.onload = function () { resolve(); };
      im.onerror = function () { reject(new Error("image")); };
      im.src = url;
    }).then(function () { return im.decode ? im.decode().catch(function () {}) : null; });
  }

  // Backward masks: each shown for MASK_MS rounded to whole frames, from the frame the
  // image disappears; then the image box is left empty ("Image hidden").
  function loadMasks(trial) {
    if (!trial.mask_urls) return Promise.resolve([]);
    return Promise.all(trial.mask_urls.map(function (url) {
      return new Promise(function (resolve, reject) {
        const image = preloaded.get(url) || new Image();
        preloaded.set(url, image);
        if (image.complete && image.naturalWidth) return resolve(url);
        image.onload = function () { resolve(url); };
        image.onerror = function () { reject(new Error("mask")); };
        if (!image.getAttribute("src")) image.src = url;
      });
    }));
  }
  function runMasks(trial, urls, end) {
    if (!urls.length || !backmask) { end(); return; }
    const frame = window.DisplayTiming.frameMs() || 1000 / 60;
    const perMask = Math.max(1, Math.round(MASK_MS / frame));
    let frames = 0;
    backmask.src = urls[0];
    backmask.hidden = false;
    function tick() {
      if (current !== trial) return; // answered during the masks: the next trial is on
      frames += 1;
      const k = Math.floor(frames / perMask);
      if (k >= urls.length) { backmask.hidden = true; end(); return; }
      if (frames % perMask === 0) backmask.src = urls[k];
      requestAnimationFrame(tick);
    }
    requestAnimationFrame(tick);
  }

  function show(trial) {
    current = trial;
    shownAt = null;
    enable(false);
    if (display) display.finish();
    field("number").textContent = numbers.format(trial.position);
    field("total").textContent = numbers.format(trial.total);
    field("practice").hidden = !trial.practice;
    // An instructed-response check shows its instruction in place of the question.
    field("instruction").textContent = trial.instruction || "";
    field("instruction").hidden = !trial.instruction;
    field("question").hidden = !!trial.instruction;
    progress.max = trial.total;
    progress.value = trial.answered;
    form.querySelector("input[name=position]").value = trial.position;
    mask.hidden = true;
    if (backmask) backmask.hidden = true;
    showImages(false);
    const urls = stimulusUrls(trial);
    const ms = trial.exposure_ms != null ? trial.exposure_ms : exposureMs;
    let masks = [];
    Promise.all(imgs.map(function (im, i) { return load(im, urls[i]); }))
      .then(function () { return loadMasks(trial); })
      .then(function (loaded) {
        masks = loaded;
        // Shown and hidden on screen refreshes, measured (display_timing.js); the response
        // time starts at the first frame drawn with the image (both images of a pair).
        display = window.DisplayTiming.trial(ms);
        display.present(imgs[0], {
          show: function () { showImages(true); },
          hide: function () {
            showImages(false);
            runMasks(trial, masks, function () { mask.hidden = false; });
          },
          shown: function (t) { shownAt = t; enable(true); },
        });
      })
      .catch(function () { failed(function () { show(trial); }); });
  }

  function failed(retry) {
    errorBox.hidden = false;
    continueWith = retry;
    document.getElementById("retry").focus();
  }

  function answer(value) {
    if (busy || shownAt === null || !feedbackBox.hidden) return;
    busy = true;
    enable(false);
    pending = {
      position: current.position, answer: value, rt_ms: Math.round(performance.now() - shownAt),
      display: JSON.stringify(display.finish()),
    };
    send();
  }

  function send() {
    errorBox.hidden = true;
    if (preview) return handle(previewNext(pending));
    const body = new URLSearchParams({
      position: pending.position, answer: pending.answer, rt_ms: pending.rt_ms,
      display: pending.display,
    });
    fetch(answerUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrf },
      body: body,
    })
      .then(function (r) {
        if (r.status === 409) {
          return r.json().then(function (d) { window.location.assign(d.resume_url); throw "resuming"; });
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (d) { pending = null; handle(d); })
      .catch(function (e) { if (e !== "resuming") failed(send); });
  }

  function handle(d) {
    [].concat(d.preload || []).forEach(preload);
    const proceed = function () {
      busy = false;
      serverNotices.forEach(function (n) { n.remove(); });
      if (d.done_url) {
        progress.value = progress.max;
        window.location.assign(d.done_url);
      } else if (d.next) {
        show(d.next);
      } else if (preview) {
        finishPreview();
      }
    };
    if (d.feedback) {
      field("feedback-text").textContent = d.feedback.text;
      feedbackBox.classList.toggle("right", d.feedback.correct);
      feedbackBox.classList.toggle("wrong", !d.feedback.correct);
      feedbackBox.hidden = false;
      continueWith = function () { feedbackBox.hidden = true; proceed(); };
      document.getElementById("continue").focus();
    } else {
      proceed();
    }
  }

  // Preview: the same pages from a list the server sent with the truth; nothing is posted.
  function previewTrial(i) {
    const t = previewTrials[i];
    return {
      position: i + 1, total: previewTrials.length, answered: i, practice: t.practice,
      image_url: t.image_url, instruction: t.instruction || "", pair_urls: t.pair_urls,
    };
  }
  function previewNext(p) {
    const t = previewTrials[p.position - 1];
    previewAnswers.push({ answer: p.answer, truth: t.truth, kind: t.kind, rt_ms: p.rt_ms });
    const next = p.position < previewTrials.length ? previewTrial(p.position) : null;
    const correct = p.answer === t.truth;
    return {
      feedback: t.practice && t.truth ? { correct: correct, truth: t.truth, text: previewSentences[correct ? "right" : "wrong"][t.truth] } : null,
      next: next,
      preload: p.position + 1 < previewTrials.length ? stimulusUrls(previewTrials[p.position + 1]) : null,
    };
  }
  function finishPreview() {
    trialBox.hidden = true;
    const measured = previewAnswers.filter(function (a) { return a.kind === "main"; });
    const right = measured.filter(function (a) { return a.answer === a.truth; }).length;
    // A rating study's trials have no truth (empty): its score is the mean rating. The
    // researcher's words (English) name what the study counts: images, or pairs.
    const score = field("preview-score");
    const n = measured.length;
    const counted = n + " measured " + (score.dataset.unit === "pairs" ? (n === 1 ? "pair" : "pairs") : (n === 1 ? "image" : "images"));
    const rated = n && !measured[0].truth;
    const mean = measured.reduce(function (sum, a) { return sum + Number(a.answer); }, 0) / (n || 1);
    if (score.dataset.preference === "1") {  // a preference has no right answer
      const left = measured.filter(function (a) { return a.answer === "left"; }).length;
      const checks = previewAnswers.length > n ? " (instructed checks left out)" : "";
      score.textContent = "You chose a side in " + counted + checks + ": left " + left + ", right " + (n - left) + ".";
    } else {
      score.textContent = rated
        ? "You rated " + counted + " (practice left out): mean rating " + mean.toFixed(2) + "."
        : "You were right on " + right + " of " + counted + " (practice and attention checks left out).";
    }
    document.getElementById("preview-done").hidden = false;
  }

  function begin(event) {
    if (event) event.preventDefault();
    instructions.hidden = true;
    trialBox.hidden = false;
    show(current);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (event.submitter && event.submitter.value) answer(event.submitter.value);
  });
  document.getElementById("begin").addEventListener("click", begin);
  document.getElementById("continue").addEventListener("click", function () { if (continueWith) continueWith(); });
  document.getElementById("retry").addEventListener("click", function () {
    errorBox.hidden = true;
    if (continueWith) continueWith();
  });
  root.querySelectorAll("[data-step]").forEach(function (b) {
    b.addEventListener("click", function () {
      b.closest("section").hidden = true;
      document.getElementById(b.dataset.step).hidden = false;
      document.getElementById("begin").focus();
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || trialBox.hidden) return;
    const value = keys[event.key.toLowerCase()];
    if (value) { event.preventDefault(); answer(value); }
  });

  if (preview) {
    current = previewTrial(0);
    if (previewTrials.length > 1) stimulusUrls(previewTrials[1]).forEach(preload);
  } else {
    (root.dataset.preload || "").split(" ").forEach(preload);
  }
  if (!trialBox.hidden) show(current);
})();
