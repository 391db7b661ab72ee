// jetseg streams grid: one live tile per stream of the daemon (its overlay picture at up to TILE_FPS, its name,
// state and fps), each a link to the stream's own viewer (s/NAME/). Polls /streams once a second.
(function () {
  "use strict";

  var POLL_MS = 1000, TILE_FPS = 15;
  var grid = document.getElementById("grid"), tiles = {};
  function byId(id) { return document.getElementById(id); }
  function setText(el, value) { if (el.textContent !== value) { el.textContent = value; } }

  // What a tile says about its stream: live, or NOT LIVE and why (the daemon's own words).
  function describe(s) {
    if (s.source_state === "ended") { return { live: false, text: "source ended" }; }
    if (s.source_state === "stopped" || s.status === "stopped") { return { live: false, text: "stopped" }; }
    if (typeof s.input_frozen_s === "number") {
      return { live: false, text: "frozen input: the same picture for " + s.input_frozen_s.toFixed(1) + " s" };
    }
    if (s.status === "degraded") { return { live: false, text: (s.reasons || []).join("; ") || "degraded" }; }
    if (s.status === "starting") { return { live: false, text: "starting" }; }
    return { live: true, text: "live" };
  }

  function tile(s) {
    var t = tiles[s.name];
    if (!t) {
      var a = document.createElement("a");
      a.className = "tile-stream"; a.href = s.page; a.title = "open the viewer of " + s.name;
      a.dataset.stream = s.name;
      var img = document.createElement("img");
      img.alt = "live overlay of " + s.name;
      img.src = s.page + "stream.mjpg?max_fps=" + TILE_FPS;
      var banner = document.createElement("div");
      banner.className = "tile-banner";
      var caption = document.createElement("div");
      caption.className = "tile-caption";
      var name = document.createElement("b"), state = document.createElement("span"), fps = document.createElement("span");
      state.className = "tile-state"; fps.className = "tile-fps";
      name.textContent = s.name;
      caption.appendChild(name); caption.appendChild(state); caption.appendChild(fps);
      var stage = document.createElement("div");
      stage.className = "tile-picture";
      stage.appendChild(img); stage.appendChild(banner);
      a.appendChild(stage); a.appendChild(caption);
      grid.appendChild(a);
      t = tiles[s.name] = { a: a, img: img, banner: banner, state: state, fps: fps };
    }
    var d = describe(s);
    t.a.dataset.state = d.live ? "live" : "not-live";
    setText(t.state, d.text);
    setText(t.fps, typeof s.fps === "number" ? s.fps.toFixed(1) + " fps" : "\u2013");
    setText(t.banner, d.live ? "" : "NOT LIVE - " + d.text);
    t.banner.hidden = d.live;
  }

  function poll() {
    fetch("streams", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { throw new Error("access token required: open this page with ?token=..."); }
        if (!r.ok) { throw new Error("server answered " + r.status); }
        return r.json();
      })
      .then(function (streams) {
        streams.forEach(tile);
        var live = streams.filter(function (s) { return describe(s).live; }).length;
        document.body.dataset.state = "open";
        byId("dot").className = "dot " + (live === streams.length ? "ok" : "bad");
        setText(byId("state"), live + " of " + streams.length + " streams live");
        setText(byId("model"), (streams[0] && streams[0].model) || "\u2013");
        setText(byId("count"), streams.length + " streams");
      })
      .catch(function (err) {
        document.body.dataset.state = "disconnected";
        byId("dot").className = "dot bad";
        setText(byId("state"), err.message || "disconnected");
      })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  var params = new URLSearchParams(window.location.search);
  if (params.has("token") && window.history.replaceState) {  // the cookie carries it now (as in app.js)
    params.delete("token");
    var rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }
  poll();
}());
