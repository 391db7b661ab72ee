// jetseg web viewer: shows /stream.mjpg (or polls /frame.jpg with ?mode=poll) and polls /stats.
// The page's requests carry the access cookie that the server set when the page was opened with ?token=.
(function () {
  "use strict";

  var POLL_MS = 500;
  var STALE_S = 2.0;
  var params = new URLSearchParams(window.location.search);
  var mode = params.get("mode") === "poll" ? "poll" : "stream";
  var img = document.getElementById("frame");
  var waiting = document.getElementById("waiting");
  var online = false;
  var streamErrors = 0;

  if (params.has("token") && window.history.replaceState) {
    // The cookie now carries the token: keep it out of the address bar, history and screenshots.
    params.delete("token");
    var rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }

  function byId(id) { return document.getElementById(id); }

  function text(id, value) { byId(id).textContent = value; }

  function fmt(value, digits) {
    if (typeof value !== "number" || !isFinite(value)) { return "\u2013"; }
    return value.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }

  // --- the image ------------------------------------------------------------------------------------
  function startStream() {
    img.src = "stream.mjpg?v=" + Date.now();
  }

  function pollFrame() {
    img.src = "frame.jpg?v=" + Date.now();
  }

  img.addEventListener("load", function () {
    waiting.hidden = true;
    streamErrors = 0;
    if (mode === "poll") { window.setTimeout(pollFrame, 60); }
  });

  img.addEventListener("error", function () {
    streamErrors += 1;
    if (mode === "stream" && streamErrors >= 3) { mode = "poll"; }  // e.g. a proxy that breaks MJPEG
    window.setTimeout(mode === "poll" ? pollFrame : startStream, 1000);
  });

  // --- the numbers ----------------------------------------------------------------------------------
  function asNumber(value) {
    // A number, or the sum of an object's numbers ({"source": 2, "pipeline": 1} -> 3), else undefined.
    if (typeof value === "number") { return value; }
    if (!value || typeof value !== "object") { return undefined; }
    var total, found = false;
    total = Object.keys(value).reduce(function (sum, k) {
      if (typeof value[k] === "number") { found = true; return sum + value[k]; }
      return sum;
    }, 0);
    return found ? total : undefined;
  }

  function findNumber(stats, names) {
    // The pipeline's own figure if it reports one (top level or one level down), else undefined.
    var i, key, sub, n;
    for (i = 0; i < names.length; i++) {
      n = asNumber(stats[names[i]]);
      if (n !== undefined) { return n; }
    }
    for (key in stats) {
      sub = stats[key];
      if (key === "viewer" || !sub || typeof sub !== "object") { continue; }
      for (i = 0; i < names.length; i++) {
        if (typeof sub[names[i]] === "number") { return sub[names[i]]; }
      }
    }
    return undefined;
  }

  function flatten(prefix, value, out) {
    if (out.length >= 40) { return; }
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      if (typeof value.p50 === "number") {  // a latency summary: one row, median and tail
        var label = prefix.replace("latency_ms.stages.", "").replace(/\.?latency_ms\.?/, " ").trim();
        out.push([label + " ms (p50 / p95)", fmt(value.p50, 2) + " / " + fmt(value.p95, 2)]);
        return;
      }
      Object.keys(value).forEach(function (k) { flatten(prefix ? prefix + "." + k : k, value[k], out); });
    } else if (typeof value === "number" || typeof value === "string" || typeof value === "boolean") {
      out.push([prefix, value]);
    }
  }

  function rgb(c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; }

  function renderAreas(v) {
    var body = byId("areas");
    var px = v.areas_px || {};
    var mm = v.areas_mm2;
    body.textContent = "";
    (v.classes || []).forEach(function (name, i) {
      if (i === 0) { return; }  // background
      var tr = document.createElement("tr");
      var sw = document.createElement("span");
      sw.className = "swatch";
      if (v.colors && v.colors[i]) { sw.style.background = rgb(v.colors[i]); }
      var cells = [sw, name, fmt(px[name], 0), mm ? fmt(mm[name], 1) : "\u2013"];
      cells.forEach(function (c, j) {
        var td = document.createElement("td");
        if (j >= 2) { td.className = "num"; }
        if (typeof c === "string") { td.textContent = c; } else { td.appendChild(c); }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function renderDetails(stats) {
    var rows = [];
    var body = byId("details");
    Object.keys(stats).forEach(function (k) { if (k !== "viewer") { flatten(k, stats[k], rows); } });
    body.textContent = "";
    if (!rows.length) { rows.push(["(no pipeline statistics)", ""]); }
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      var a = document.createElement("td");
      var b = document.createElement("td");
      a.textContent = r[0];
      b.textContent = typeof r[1] === "number" ? fmt(r[1], 3) : String(r[1]);
      tr.appendChild(a);
      tr.appendChild(b);
      body.appendChild(tr);
    });
  }

  function setState(ok, label) {
    byId("dot").className = "dot " + (ok ? "ok" : "bad");
    text("state", label);
  }

  function render(stats) {
    var v = stats.viewer || {};
    var fps = findNumber(stats, ["fps", "output_fps"]);
    var drops = findNumber(stats, ["dropped", "drops", "frames_dropped"]);
    text("model", v.model || "\u2013");
    document.title = "jetseg \u2013 " + (v.model || "viewer");
    text("fps", fmt(fps !== undefined ? fps : v.fps, 1));
    text("latency", fmt(v.latency_ms, 1));
    text("inference", fmt(v.inference_ms, 1));
    text("drops", fmt(drops !== undefined ? drops : v.skipped, 0));
    text("frame-index", fmt(v.frame, 0));
    text("viewers", (v.stream_clients || 0) + " stream viewer" + (v.stream_clients === 1 ? "" : "s"));
    renderAreas(v);
    renderDetails(stats);
    if (v.age_s === null || v.age_s === undefined) {
      setState(true, "connected, no frames yet");
    } else if (v.age_s > STALE_S) {
      setState(false, "no new frames for " + fmt(v.age_s, 0) + " s");
    } else {
      setState(true, "live");
    }
  }

  function pollStats() {
    fetch("stats", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { throw new Error("access token required: open this page with ?token=..."); }
        if (!r.ok) { throw new Error("server answered " + r.status); }
        return r.json();
      })
      .then(function (stats) {
        if (!online && mode === "stream") { startStream(); }  // reconnect after an outage
        online = true;
        render(stats);
      })
      .catch(function (err) {
        online = false;
        setState(false, err.message && err.message.indexOf("token") >= 0 ? err.message : "disconnected");
      })
      .then(function () { window.setTimeout(pollStats, POLL_MS); });
  }

  if (mode === "poll") { pollFrame(); } else { startStream(); }
  online = true;
  pollStats();
}());
