"""The web viewer's static page (index.html, app.js, style.css), served by jetseg.jetson.sinks.web."""
