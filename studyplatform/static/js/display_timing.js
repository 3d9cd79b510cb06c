// Measured display timing (README, "Display timing"): a stimulus is shown and hidden on
// screen refreshes (requestAnimationFrame), and what the browser can tell of its display
// is measured and sent with the answer, for every protocol's trial script to use:
//
//   const display = DisplayTiming.trial(exposureMs);      // 0: shown until answered
//   display.present(element, { show, hide, shown });      // show(): make it visible;
//                                                         // hide(): at the exposure's end;
//                                                         // shown(t): first frame drawn
//   ... on the answer: body.display = JSON.stringify(display.finish());
//
// Measured: the refresh interval (median frame interval over the frames before the trial,
// a warm-up of at least MIN_SAMPLES frames), the exposure (rAF timestamp of the frame the
// stimulus was first drawn in to that of the first frame without it), devicePixelRatio, the
// window's inner size, the element's size on screen, and whether during the trial (first
// frame to answer) the page was hidden, the window lost the focus or left full screen.
// Nothing here depends on what the stimulus is.
(function () {
  "use strict";
  const KEPT = 31; // frame intervals kept for the median
  const MIN_SAMPLES = 10; // a trial waits for this many before it starts
  const LONGEST = 250; // ms: a longer interval is a pause (hidden page), not a frame
  const intervals = [];
  let last = null;
  let active = null; // the trial between its first frame and its answer

  function sample(t) {
    if (last !== null && t - last > 0 && t - last < LONGEST) {
      intervals.push(t - last);
      if (intervals.length > KEPT) intervals.shift();
    }
    last = t;
    requestAnimationFrame(sample);
  }
  requestAnimationFrame(sample);

  function median(values) {
    if (!values.length) return null;
    const sorted = values.slice().sort(function (a, b) { return a - b; });
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }
  function rounded(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return null;
    const f = Math.pow(10, digits);
    return Math.round(x * f) / f;
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      last = null; // the frames stopped: the next interval is no frame
      if (active) active.hidden = true;
    }
  });
  window.addEventListener("blur", function () { if (active) active.blurred = true; });
  document.addEventListener("fullscreenchange", function () {
    if (active && !document.fullscreenElement) active.left_fullscreen = true;
  });

  function trial(exposureMs) {
    const target = exposureMs > 0 ? exposureMs : 0;
    const state = { hidden: false, blurred: false, left_fullscreen: false };
    let frame = null, frames = null, rect = null, view = null, shownT = null, hiddenT = null;
    let finished = false;

    function present(element, how) {
      function start(t) {
        if (finished) return;
        if (intervals.length < MIN_SAMPLES) { requestAnimationFrame(start); return; }
        frame = median(intervals);
        how.show();
        shownT = t;
        active = state;
        rect = element.getBoundingClientRect();
        view = [window.devicePixelRatio, window.innerWidth, window.innerHeight];
        if (target) {
          frames = Math.max(1, Math.round(target / frame));
          requestAnimationFrame(tick);
        }
        how.shown(t);
      }
      // Hide on the first frame at or past the target's last one (by time, so that a
      // dropped frame is not counted as shown).
      function tick(t) {
        if (finished) return;
        if (t - shownT >= (frames - 0.5) * frame) {
          how.hide();
          hiddenT = t;
        } else {
          requestAnimationFrame(tick);
        }
      }
      requestAnimationFrame(start);
    }

    function finish() {
      finished = true;
      if (active === state) active = null;
      const early = target > 0 && shownT !== null && hiddenT === null;
      return {
        target_frames: frames,
        exposure_ms: hiddenT !== null ? rounded(hiddenT - shownT, 2) : null,
        frame_ms: rounded(frame, 3),
        device_pixel_ratio: view ? rounded(view[0], 3) : null,
        window_width: view ? view[1] : null,
        window_height: view ? view[2] : null,
        image_width: rect ? rounded(rect.width, 1) : null,
        image_height: rect ? rounded(rect.height, 1) : null,
        hidden: state.hidden,
        blurred: state.blurred,
        left_fullscreen: state.left_fullscreen,
        answered_early: target > 0 ? early : null,
      };
    }

    return { present: present, finish: finish };
  }

  // The refresh interval measured so far (ms; null before any frame): what a script that
  // shows something for a number of frames (HYPE_time's masks) counts with.
  function frameMs() { return median(intervals); }

  window.DisplayTiming = { trial: trial, frameMs: frameMs };
})();
