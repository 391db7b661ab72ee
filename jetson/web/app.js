// jetseg web viewer. Reads /stream.mjpg?layers=1 with fetch: per frame a JSON part (index, capture time, areas),
// the frame (JPEG) and the mask (indexed PNG, palette.js); the browser decodes both, drawn on one canvas, newest
// frame wins. It measures what this screen shows (capture -> display by the picture's own index and capture
// stamp) and labels the pipeline's figures (/stats) as the pipeline's. Requests carry the server's access cookie.
(function () {
  "use strict";

  var STATS_MS = 1000, HISTORY = 60, WINDOW = 90, PANEL_MS = 250;
  var BOUNDARY = "--jetsegframe";
  var params = new URLSearchParams(window.location.search);
  function byId(id) { return document.getElementById(id); }
  var canvas = byId("picture"), ctx = canvas.getContext("2d", { alpha: false });

  if (params.has("token") && window.history.replaceState) {
    // The cookie now carries the token: keep it out of the address bar, history and screenshots.
    params.delete("token");
    var rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }

  var view = {
    classes: [], colors: [], enabled: [], overlay: true, contour: false, opacity: 0.45,
    frozen: false, cursor: -1, history: [], shown: null, palette: null,
    streamState: "connecting", lastArrival: 0, period: 1000 / 30, clockOffset: 0, bestRtt: Infinity,
    pending: null, latest: null, repeating: false, decoding: false, log: [], statsPrev: null, panelItem: null, panelAt: 0
  };
  window.jetsegViewer = view;  // for measurements (benchmarks/viewer.py) and tests

  function setText(el, value) { if (el.textContent !== value) { el.textContent = value; } }  // no change: no layout
  function text(id, value) { setText(byId(id), value); }
  function fmt(value, digits) {  // 12,345.6: as toLocaleString, without its cost at 30 frames/s
    if (typeof value !== "number" || !isFinite(value)) { return "\u2013"; }
    var s = value.toFixed(digits);
    if (digits > 0) { s = s.replace(/\.?0+$/, ""); }
    var parts = s.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }
  function nowMs() { return performance.timeOrigin + performance.now(); }
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function clock(ms) { var d = new Date(ms); return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds()); }
  function pct(values, p) {
    if (!values.length) { return undefined; }
    var s = values.slice().sort(function (a, b) { return a - b; });
    return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))];
  }

  // --- the stream: multipart parts read with fetch ----------------------------------------------------
  var enc = new TextEncoder(), dec = new TextDecoder();
  var CRLF2 = enc.encode("\r\n\r\n"), MARK = enc.encode("\r\n" + BOUNDARY);
  function find(buf, pat, from) {
    outer: for (var i = from; i <= buf.length - pat.length; i++) {
      for (var j = 0; j < pat.length; j++) { if (buf[i + j] !== pat[j]) { continue outer; } }
      return i;
    }
    return -1;
  }

  function readStream() {
    if (view.streamState !== "stopped") { view.streamState = "connecting"; }  // "stopped" stays until frames come
    fetch("stream.mjpg?layers=1&v=" + Date.now(), { cache: "no-store", credentials: "same-origin" })
      .then(function (resp) {
        if (resp.status === 401) { throw new Error("access token required: open this page with ?token=..."); }
        if (!resp.ok || !resp.body) { throw new Error("server answered " + resp.status); }
        var reader = resp.body.getReader();
        var buf = new Uint8Array(0), pos = -1, part = {};
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) { return; }
            var joined = new Uint8Array(buf.length + r.value.length);
            joined.set(buf); joined.set(r.value, buf.length); buf = joined;
            for (;;) {
              if (pos < 0) {  // the opening boundary line
                var first = find(buf, enc.encode(BOUNDARY + "\r\n"), 0);
                if (first < 0) { break; }
                pos = first + BOUNDARY.length + 2;
              }
              var end = find(buf, CRLF2, pos);
              if (end < 0) { break; }
              var head = dec.decode(buf.subarray(pos, end)), headers = {};
              head.split("\r\n").forEach(function (l) {
                var k = l.indexOf(":"); if (k > 0) { headers[l.slice(0, k).trim().toLowerCase()] = l.slice(k + 1).trim(); }
              });
              var len = parseInt(headers["content-length"], 10), start = end + 4;
              if (buf.length < start + len + MARK.length + 2) { break; }
              onPart(headers["content-type"], buf.slice(start, start + len), part);
              buf = buf.slice(start + len + MARK.length + 2);  // past "\r\n--jetsegframe\r\n" (or "--")
              pos = 0;
            }
            return pump();
          });
        }
        view.streamState = "open";
        return pump();
      })
      .then(function () { streamClosed(null); }, function (err) { streamClosed(err); });
  }

  function streamClosed(err) {
    // A finite source that ended stays ended (reload the page to start again); after a stop or an outage the
    // page keeps trying, so it comes back by itself when the daemon is restarted or reloaded.
    if (view.streamState === "ended") { updateState(); return; }
    if (view.streamState !== "stopped") {
      view.streamState = err && err.message.indexOf("token") >= 0 ? err.message : "disconnected";
    }
    window.setTimeout(readStream, view.streamState === "stopped" ? 2000 : 1000);
    updateState();
  }

  function onPart(ctype, bytes, part) {
    if (ctype === "application/json") {
      var data = JSON.parse(dec.decode(bytes));
      if (data.state) { view.streamState = data.state; updateState(); return; }
      part.meta = data; part.frame = part.mask = null;
    } else if (ctype === "image/jpeg" && part.meta) {
      part.frame = bytes;
    } else if (ctype === "image/png" && part.meta && part.frame) {
      var item = { meta: part.meta, frame: part.frame, mask: bytes, arrived: nowMs() };
      part.meta = null;
      arrived(item);
    }
  }

  function arrived(item) {
    if (view.streamState !== "open") { view.streamState = "open"; }
    if (view.lastArrival) { view.period = 0.9 * view.period + 0.1 * (item.arrived - view.lastArrival); }
    view.lastArrival = item.arrived;
    view.latest = item;
    if ((typeof item.meta.frozen_s === "number") !== view.repeating) {  // the input froze or came back: say so now
      view.repeating = !view.repeating;
      updateState();
    }
    if (view.frozen) { return; }  // the frames to step through stay those before the freeze
    view.history.push(item);
    if (view.history.length > HISTORY) { view.history.shift(); }
    view.pending = item;  // newest wins: a frame still waiting for its turn is replaced
    decodeNext();
  }

  function makePalette() {  // until /stats names the colours: the server's palette
    view.palette = view.colors.length ? jetsegMask.palette(view.colors, view.enabled, view.opacity, view.contour) : null;
  }

  function decodeNext() {
    if (view.decoding || !view.pending) { return; }
    var item = view.pending;
    view.pending = null;
    view.decoding = true;
    var jobs = [createImageBitmap(new Blob([item.frame], { type: "image/jpeg" }))];
    if (view.overlay) { jobs.push(createImageBitmap(jetsegMask.blob(item.mask, view.palette))); }
    Promise.all(jobs)
      .then(function (bitmaps) {
        window.requestAnimationFrame(function () {
          if (view.frozen && item !== view.history[view.cursor]) {  // decoded before the freeze: not shown
            bitmaps.forEach(function (b) { b.close(); });
          } else {
            show(item, bitmaps[0], bitmaps[1]);
          }
          view.decoding = false;
          decodeNext();
        });
      }, function () { view.decoding = false; decodeNext(); });
  }

  function redraw() {  // the controls changed: draw the picture on screen again
    makePalette();
    if (view.shown && !view.pending) { view.pending = view.shown; decodeNext(); }
  }

  // --- drawing --------------------------------------------------------------------------------------
  function show(item, frame, mask) {
    var w = frame.width, h = frame.height;
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
      byId("stage").style.setProperty("--ar", w / h);
      byId("stage").style.aspectRatio = w + " / " + h;
    }
    ctx.drawImage(frame, 0, 0);
    if (mask) { ctx.drawImage(mask, 0, 0, w, h); mask.close(); }
    frame.close();
    var again = item === view.shown;
    view.shown = item;
    byId("waiting").hidden = true;
    var m = item.meta, displayed = nowMs();
    if (!again && !view.frozen && typeof m.captured_ms === "number") {
      view.log.push({ index: m.index, captured_ms: m.captured_ms, arrived_ms: item.arrived, displayed_ms: displayed,
                      latency_ms: displayed + view.clockOffset - m.captured_ms });
      if (view.log.length > 5000) { view.log.splice(0, 1000); }
    }
    if (again || view.frozen || displayed - view.panelAt >= PANEL_MS) { renderPanel(item); }
  }

  // The frame number, its time and its areas are text: changing them at 30 frames/s costs each tab a layout
  // and a repaint per frame, so they follow the picture at most every PANEL_MS (always the numbers of a
  // picture that was on screen, and of the one on screen when frozen or once the stream stops).
  function renderPanel(item) {
    var m = item.meta;
    view.panelItem = item;
    view.panelAt = nowMs();
    text("frame-index", String(m.index));
    text("frame-time", typeof m.captured_ms === "number" ? clock(m.captured_ms - view.clockOffset) : "");
    renderAreas(m);
  }

  // --- state: live, stalled, frozen, ended ----------------------------------------------------------
  // Seconds the source has repeated the same picture, as the daemon saw it in the newest frame (its frozen_s:
  // docs/runtime.md, "Frozen input"), counted on to now; null while the picture changes.
  function repeated() {
    var m = view.latest && view.latest.meta;
    return m && typeof m.frozen_s === "number" ? m.frozen_s + (nowMs() - view.latest.arrived) / 1000 : null;
  }

  function updateState() {
    if (view.shown && view.panelItem !== view.shown && nowMs() - view.panelAt >= PANEL_MS) { renderPanel(view.shown); }
    var s = view.streamState, body = document.body, since = nowMs() - view.lastArrival;
    var stale = Math.max(1000, 3 * view.period), state, label, ok = false;
    if (s === "ended") { state = "ended"; label = "source ended"; }
    else if (s === "stopped") { state = "stopped"; label = "stopped"; }
    else if (s !== "open" && s !== "connecting") { state = "disconnected"; label = s; }
    else if (!view.lastArrival) { state = "waiting"; label = s === "open" ? "connected, no frames yet" : "connecting"; ok = true; }
    else if (since > stale) { state = "stalled"; label = "no new frame for " + fmt(since / 1000, 1) + " s"; }
    else if (repeated() !== null) { state = "repeating"; label = "frozen input: the same picture for " + fmt(repeated(), 1) + " s"; }
    else { state = "live"; label = "live"; ok = true; }
    if (view.frozen) { label = "frozen (" + label + ")"; }
    if (body.dataset.state !== state) { body.dataset.state = state; }
    body.classList.toggle("frozen", view.frozen);
    byId("dot").className = "dot " + (ok ? "ok" : "bad");
    text("state", label);
    var notLive = state !== "live" && state !== "waiting" && view.shown;
    var banner = byId("banner");
    banner.hidden = !(notLive || view.frozen);
    byId("view").classList.toggle("stale", Boolean(notLive));
    if (view.frozen) {
      text("banner-title", "FROZEN - frame " + view.shown.meta.index);
      text("banner-detail", "captured " + clock(view.shown.meta.captured_ms - view.clockOffset) +
           "; Space resumes, \u2190 \u2192 step" + (notLive ? "; stream: " + label : ""));
    } else if (state === "repeating") {  // frames arrive, but the daemon saw the same picture in each
      text("banner-title", "NOT LIVE - frozen input");
      var m = view.latest.meta;
      text("banner-detail", label + ", since " + clock(m.captured_ms - m.frozen_s * 1000 - view.clockOffset));
    } else if (notLive) {
      var last = view.shown.meta.captured_ms;
      text("banner-title", "NOT LIVE - last frame " + clock(last - view.clockOffset));
      text("banner-detail", label);
    }
  }

  // --- numbers --------------------------------------------------------------------------------------
  function rgb(c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; }

  var areaRows = null;  // per class: its name and cells; the rows are built once, their numbers updated
  function buildAreas() {
    var body = byId("areas");
    body.textContent = "";
    areaRows = [];
    view.classes.forEach(function (name, i) {
      if (i === 0) { return; }  // background
      var tr = document.createElement("tr");
      var box = document.createElement("input");
      box.type = "checkbox"; box.title = "show " + name + " (" + i + ")";
      box.addEventListener("change", function () { toggleClass(i); });
      var sw = document.createElement("span");
      sw.className = "swatch";
      if (view.colors[i]) { sw.style.background = rgb(view.colors[i]); }
      var label = document.createElement("span");
      label.appendChild(sw); label.appendChild(document.createTextNode(" " + (i <= 9 ? i + " " : "") + name));
      var cells = [box, label, "", ""].map(function (c, j) {
        var td = document.createElement("td");
        if (j >= 2) { td.className = "num"; }
        if (typeof c !== "string") { td.appendChild(c); }
        tr.appendChild(td);
        return td;
      });
      areaRows.push({ index: i, name: name, box: box, px: cells[2], mm: cells[3] });
      body.appendChild(tr);
    });
  }

  function renderAreas(m) {
    if (!areaRows || areaRows.length !== Math.max(0, view.classes.length - 1)) { buildAreas(); }
    var px = m.areas_px || {}, mm = m.areas_mm2;
    text("areas-frame", "frame " + m.index);
    text("area-unit", mm ? "mm\u00b2" : "mm\u00b2 (no spacing)");
    areaRows.forEach(function (r) {
      r.box.checked = view.enabled[r.index] !== false;
      setText(r.px, fmt(px[r.name], 0));
      setText(r.mm, mm ? fmt(mm[r.name], 1) : "\u2013");
    });
  }

  function screenFigures() {
    var cutoff = nowMs() - 3000, recent = view.log.filter(function (r) { return r.displayed_ms >= cutoff; });
    var lat = recent.slice(-WINDOW).map(function (r) { return r.latency_ms; });
    var fps = recent.length >= 2 ? (recent.length - 1) * 1000 / (recent[recent.length - 1].displayed_ms - recent[0].displayed_ms) : 0;
    var skipped = 0;
    for (var i = 1; i < recent.length; i++) { skipped += Math.max(0, recent[i].index - recent[i - 1].index - 1); }
    return { p50: pct(lat, 50), p95: pct(lat, 95), fps: fps, skippedPerS: recent.length ? skipped / 3 : 0 };
  }

  function dropsPerSecond(stats) {
    var total = 0, now = nowMs();
    Object.keys(stats.dropped || {}).forEach(function (k) { if (typeof stats.dropped[k] === "number") { total += stats.dropped[k]; } });
    var prev = view.statsPrev;
    view.statsPrev = { total: total, at: now };
    return prev ? Math.max(0, (total - prev.total) * 1000 / (now - prev.at)) : undefined;
  }

  function pipelineRows(stats) {
    var lat = stats.latency_ms || {}, rows = [];
    function add(label, value) { if (value !== undefined && value !== null && value !== "") { rows.push([label, value]); } }
    function ms(summary) { return summary && typeof summary.p50 === "number" ? fmt(summary.p50, 1) + " / " + fmt(summary.p95, 1) : undefined; }
    add("source", stats.source_state);
    add("frames processed", fmt(stats.frames, 0));
    add("capture \u2192 mask, ms p50 / p95", ms(lat.capture_to_mask));
    add("capture \u2192 sink, ms p50 / p95", ms(lat.capture_to_sink));
    Object.keys(lat.stages || {}).forEach(function (k) { add(k + ", ms p50 / p95", ms(lat.stages[k])); });
    add("reconnects", stats.reconnects ? fmt(stats.reconnects, 0) : undefined);
    var mo = (stats.motion || {}).last;  // a registration model: |u| of the last frame, frame pixels
    if (mo) { add("motion |u|, px mean / p95", fmt(mo.mean_px, 2) + " / " + fmt(mo.p95_px, 2)); add("folding", fmt(mo.folding * 100, 2) + " %"); }
    return rows;
  }

  function render(stats) {
    var v = stats.viewer || {}, screen = screenFigures(), drops = dropsPerSecond(stats);
    if (v.classes && v.classes.length && !view.classes.length) {
      view.classes = v.classes; view.colors = v.colors || [];
      makePalette();
    }
    var segmenting = !v.task || v.task === "segmentation";  // enhancement and registration have no classes
    byId("legend").hidden = byId("legend-title").hidden = !segmenting;
    byId("reference").hidden = v.task !== "registration";
    text("model", (v.stream ? v.stream + " \u00b7 " : "") + (v.model || "\u2013"));
    byId("all-streams").hidden = !(v.streams > 1);
    document.title = "jetseg \u2013 " + (v.stream ? v.stream + " \u2013 " : "") + (v.model || "viewer");
    text("latency", fmt(screen.p50, 0));
    text("latency-p95", fmt(screen.p95, 0));
    text("fps", fmt(screen.fps, 1));
    text("skipped", fmt(screen.skippedPerS, 1));
    text("pipeline-fps", fmt(stats.fps, 1));
    text("pipeline-latency", fmt(((stats.latency_ms || {}).capture_to_sink || {}).p50, 0));
    text("drops", fmt(drops, 1));
    text("viewers", (v.stream_clients || 0) + " stream viewer" + (v.stream_clients === 1 ? "" : "s"));
    var body = byId("details");
    body.textContent = "";
    pipelineRows(stats).forEach(function (r) {
      var tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
      a.textContent = r[0]; b.textContent = String(r[1]);
      tr.appendChild(a); tr.appendChild(b); body.appendChild(tr);
    });
    if (stats.source_state === "ended" && view.streamState === "open") { view.streamState = "ended"; }
    if (view.panelItem) { renderAreas(view.panelItem.meta); }
  }

  function pollStats() {
    var sent = nowMs();
    fetch("stats", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { throw new Error("access token required: open this page with ?token=..."); }
        if (!r.ok) { throw new Error("server answered " + r.status); }
        return r.json();
      })
      .then(function (stats) {
        var got = nowMs(), rtt = got - sent, server = (stats.viewer || {}).now_ms;
        if (typeof server === "number" && rtt <= view.bestRtt * 1.5) {  // server clock - this clock
          view.bestRtt = Math.min(view.bestRtt, rtt);
          view.clockOffset = server - (sent + got) / 2;
        }
        render(stats);
      })
      .catch(function (err) {
        if (view.streamState === "open") { view.streamState = err.message || "disconnected"; }
      })
      .then(function () { updateState(); window.setTimeout(pollStats, STATS_MS); });
  }

  // --- controls -------------------------------------------------------------------------------------
  function toggleClass(i) { view.enabled[i] = view.enabled[i] === false; redraw(); if (view.panelItem) { renderAreas(view.panelItem.meta); } }
  function setOverlay(on) { view.overlay = on; byId("show-overlay").checked = on; redraw(); }
  function setContour(on) { view.contour = on; byId("contour-only").checked = on; redraw(); }
  function setOpacity(value) {
    view.opacity = Math.max(0, Math.min(1, value));
    byId("opacity").value = String(Math.round(view.opacity * 100));
    redraw();
  }
  function freeze(on) {
    view.frozen = on;
    view.pending = null;
    view.cursor = on ? view.history.indexOf(view.shown) : -1;
    byId("freeze").textContent = on ? "Resume" : "Freeze";
    byId("step-back").disabled = byId("step-next").disabled = !on;
    if (!on && view.history.length) { view.pending = view.history[view.history.length - 1]; decodeNext(); }
    updateState();
  }
  function step(delta) {
    if (!view.frozen) { freeze(true); }
    var next = Math.max(0, Math.min(view.history.length - 1, view.cursor + delta));
    if (next === view.cursor || next < 0) { return; }
    view.cursor = next;
    view.pending = view.history[next];
    decodeNext();
    window.setTimeout(updateState, 50);
  }
  function snapshot() {
    if (!view.shown) { return; }
    var w = canvas.width, h = canvas.height, band = Math.max(18, Math.round(h / 24));
    var out = document.createElement("canvas");
    out.width = w; out.height = h + band;
    var ctx = out.getContext("2d");
    ctx.drawImage(canvas, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(0, h, w, band);
    ctx.fillStyle = "#fff"; ctx.font = Math.round(band * 0.7) + "px sans-serif";
    var m = view.shown.meta, when = new Date(m.captured_ms - view.clockOffset);
    ctx.fillText("frame " + m.index + "  " + when.toISOString() + "  " + (byId("model").textContent || ""), 4, h + band * 0.78);
    out.toBlob(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "jetseg-frame-" + m.index + ".png";
      document.body.appendChild(a); a.click(); a.remove();
      window.setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
    }, "image/png");
  }
  function fullscreen() {
    var el = byId("view");
    if (document.fullscreenElement) { document.exitFullscreen(); } else if (el.requestFullscreen) { el.requestFullscreen(); }
  }

  byId("show-overlay").addEventListener("change", function (e) { setOverlay(e.target.checked); });
  byId("contour-only").addEventListener("change", function (e) { setContour(e.target.checked); });
  byId("opacity").addEventListener("input", function (e) { setOpacity(Number(e.target.value) / 100); });
  byId("freeze").addEventListener("click", function () { freeze(!view.frozen); });
  byId("step-back").addEventListener("click", function () { step(-1); });
  byId("step-next").addEventListener("click", function () { step(1); });
  byId("snapshot").addEventListener("click", snapshot);
  byId("fullscreen").addEventListener("click", fullscreen);
  function setReference() {  // registration: the frame on screen becomes the reference (POST /reference)
    fetch("reference", { method: "POST", credentials: "same-origin", headers: { "X-Requested-With": "jetseg" } })
      .then(function (r) { return r.json().then(function (d) { var b = byId("reference"); b.title = d.message || "";
        b.textContent = r.ok ? "Reference \u2713" : "Reference \u2717"; window.setTimeout(function () { b.textContent = "Reference"; }, 2000); }); });
  }
  byId("reference").addEventListener("click", setReference);
  document.addEventListener("keydown", function (e) {
    if (e.target && e.target.tagName === "INPUT" && e.target.type === "range") { return; }
    var k = e.key;
    if (k === "o" || k === "O") { setOverlay(!view.overlay); }
    else if (k === "c" || k === "C") { setContour(!view.contour); }
    else if (k === "+" || k === "=") { setOpacity(view.opacity + 0.1); }
    else if (k === "-") { setOpacity(view.opacity - 0.1); }
    else if (k === " ") { freeze(!view.frozen); }
    else if (k === "ArrowLeft") { step(-1); }
    else if (k === "ArrowRight") { step(1); }
    else if (k === "s" || k === "S") { snapshot(); }
    else if (k === "f" || k === "F") { fullscreen(); }
    else if (k === "r" || k === "R") { setReference(); }
    else if (/^[1-9]$/.test(k) && Number(k) < view.classes.length) { toggleClass(Number(k)); }
    else { return; }
    e.preventDefault();
  });

  window.setInterval(updateState, 250);
  readStream();
  pollStats();
}());
