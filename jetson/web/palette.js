// The viewer's mask layer (jetson/sinks/webpng.py): an indexed-colour PNG whose pixel value is the class index,
// +EDGE on a class's boundary pixels. What the overlay shows (colours, opacity, contour only, the classes on) is
// its palette (PLTE) and transparency (tRNS); jetsegMask swaps those two chunks before the browser decodes it.
var jetsegMask = (function () {
  "use strict";

  var EDGE = 128, PALETTE_AT = 33, PALETTE_BYTES = (12 + 768) + (12 + 256);  // as webpng.py writes them
  var enc = new TextEncoder(), dec = new TextDecoder();
  var CRC = (function () {
    var t = new Uint32Array(256);
    for (var n = 0; n < 256; n++) {
      var c = n;
      for (var k = 0; k < 8; k++) { c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; }
      t[n] = c >>> 0;
    }
    return t;
  }());

  function chunk(type, data) {  // length, type, data, CRC-32 of type and data
    var out = new Uint8Array(12 + data.length), dv = new DataView(out.buffer), c = 0xFFFFFFFF;
    dv.setUint32(0, data.length);
    out.set(enc.encode(type), 4);
    out.set(data, 8);
    for (var i = 4; i < 8 + data.length; i++) { c = CRC[(c ^ out[i]) & 255] ^ (c >>> 8); }
    dv.setUint32(8 + data.length, (c ^ 0xFFFFFFFF) >>> 0);
    return out;
  }

  // PLTE + tRNS for class colours [[r, g, b], ...] (index 0: background, never drawn), the classes switched
  // off (enabled[i] === false), the opacity inside a class (0..1) and contour only (no inside at all).
  function palette(colors, enabled, opacity, contour) {
    var colours = new Uint8Array(768), alpha = new Uint8Array(256), fill = Math.round(opacity * 255);
    for (var c = 1; c < Math.min(colors.length, EDGE); c++) {
      var col = colors[c] || [255, 255, 0], on = enabled[c] !== false;
      for (var j = 0; j < 3; j++) { colours[3 * c + j] = colours[3 * (c + EDGE) + j] = col[j]; }
      alpha[c] = on && !contour ? fill : 0;
      alpha[c + EDGE] = on ? 255 : 0;
    }
    return new Blob([chunk("PLTE", colours), chunk("tRNS", alpha)]);
  }

  // The mask's PNG bytes as a Blob to decode, with `chunks` (palette()) in place of the server's (null: as sent).
  function blob(bytes, chunks) {
    var ours = chunks && bytes.length > PALETTE_AT + PALETTE_BYTES &&
               dec.decode(bytes.subarray(PALETTE_AT + 4, PALETTE_AT + 8)) === "PLTE";
    return new Blob(ours ? [bytes.subarray(0, PALETTE_AT), chunks, bytes.subarray(PALETTE_AT + PALETTE_BYTES)]
                         : [bytes], { type: "image/png" });
  }

  return { palette: palette, blob: blob, EDGE: EDGE };
}());
