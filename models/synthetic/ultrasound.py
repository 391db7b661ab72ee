"""Synthetic B-mode ultrasound: a sector (fan) image with speckle, depth attenuation, tissue layers,
hypo- and anechoic lesions (the target class), and burned-in scanner text outside the sector.

The image is grey, replicated to BGR like a scanner's video output. Per ``(seed, size)`` the geometry
and the text layer are cached; per scene (clip) the speckled tissue texture is cached; a frame slices the
texture, applies the sector gain and draws the lesions in their bounding boxes.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np

from jetseg.models.synthetic.common import (
    CLIP_LENGTH,
    Path2D,
    blob_field,
    cached,
    cv2,
    rng,
    smooth_noise,
    window,
)

CLASSES = ["background", "lesion"]
_MARGIN = 0.12  # texture margin for motion, as a fraction of the frame height


def geometry(size: Tuple[int, int]) -> Dict[str, float]:
    """Sector geometry for a frame ``(height, width)``: apex, inner/outer radius, half-angle (radians)."""
    h, w = size
    top = 0.09 * h
    r0 = 0.10 * h
    r1 = r0 + 0.86 * h
    half = min(math.radians(36.0), math.asin(min(0.95, 0.46 * w / r1)))
    return {"cx": w / 2.0, "cy": top - r0, "r0": r0, "r1": r1, "half": half}


def field_of_view(size: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Bounding box ``(x, y, w, h)`` of the sector."""
    g = geometry(size)
    h, w = size
    x0 = int(math.floor(g["cx"] - g["r1"] * math.sin(g["half"])))
    x1 = int(math.ceil(g["cx"] + g["r1"] * math.sin(g["half"])))
    y0 = int(math.floor(g["cy"] + g["r0"] * math.cos(g["half"])))
    y1 = int(math.ceil(g["cy"] + g["r1"]))
    x0, y0 = max(0, x0), max(0, y0)
    return x0, y0, min(w, x1) - x0, min(h, y1) - y0


def _static(size: Tuple[int, int]) -> Dict[str, Any]:
    """Per-size maps: sector mask, gain (attenuation, soft edges), burned-in text."""
    h, w = size
    g = geometry(size)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xs - g["cx"], ys - g["cy"]
    r = np.sqrt(dx * dx + dy * dy)
    theta = np.arctan2(dx, dy)
    depth = (r - g["r0"]) / (g["r1"] - g["r0"])
    inside = (depth >= 0) & (depth <= 1) & (np.abs(theta) <= g["half"])
    edge_px = 3.0
    lateral = np.clip((g["half"] - np.abs(theta)) * r / edge_px, 0, 1)
    radial = np.clip(np.minimum(depth, 1 - depth) * (g["r1"] - g["r0"]) / edge_px, 0, 1)
    gain = np.exp(-1.1 * np.clip(depth, 0, 1)) * 1.25 * lateral * radial * inside
    text = np.zeros((h, w), np.uint8)
    _draw_text(text, size, g)
    x0, y0, fw, fh = field_of_view(size)
    text[y0:y0 + fh, x0:x0 + fw] = 0  # never inside the ROI crop
    ty, tx = np.nonzero(text)
    return {"inside": inside, "gain": gain.astype(np.float32), "text_idx": (ty, tx),
            "text_val": text[ty, tx], "geometry": g}


def _draw_text(img: np.ndarray, size: Tuple[int, int], g: Dict[str, float]) -> None:
    """Scanner overlay text, laid out around the sector's bounding box (the ROI crop removes all of it)."""
    c = cv2()
    h, w = size
    x0, y0, fw, fh = field_of_view(size)
    scale = _text_scale(h)
    font = c.FONT_HERSHEY_SIMPLEX
    line = c.getTextSize("Ag", font, scale, 1)[0][1] + 4
    left = int(0.012 * w)
    c.putText(img, "ANON 0000  ID 00000000", (left, line), font, scale, 200, 1, c.LINE_AA)
    c.putText(img, "C5-2 5.0MHz", (left, 2 * line), font, scale, 200, 1, c.LINE_AA)
    gain = "GAIN 52 DR 60"
    width = c.getTextSize(gain, font, scale, 1)[0][0]
    c.putText(img, gain, (w - width - left, line), font, scale, 200, 1, c.LINE_AA)
    # depth scale right of the sector: a tick per centimetre of a 16 cm field, labels every 5 cm
    x = x0 + fw + 3
    top, bottom = g["cy"] + g["r0"], g["cy"] + g["r1"]
    for cm in range(0, 17):
        y = int(top + (bottom - top) * cm / 16.0)
        c.line(img, (x, y), (x + (8 if cm % 5 == 0 else 4), y), 200, 1)
        if cm % 5 == 0 and cm:
            c.putText(img, str(cm), (x + 11, y + 4), font, scale, 200, 1, c.LINE_AA)


def _text_scale(h: int) -> float:
    return max(0.3, h / 1100.0)


def _clip_scene(seed: int, clip: int, size: Tuple[int, int]) -> Dict[str, Any]:
    """Per-scene texture (layers x speckle) and the lesions' parameters."""
    h, w = size
    g = geometry(size)
    m = int(_MARGIN * h)
    th, tw = h + 2 * m, w + 2 * m
    gen = rng(seed, clip, 1)
    ys, xs = np.mgrid[0:th, 0:tw].astype(np.float32)
    dx, dy = xs - (g["cx"] + m), ys - (g["cy"] + m)
    r = np.sqrt(dx * dx + dy * dy)
    depth = (r - g["r0"]) / (g["r1"] - g["r0"])
    # tissue layers: a few boundaries, wavy across the sector
    wave = 0.035 * smooth_noise(gen, (th, tw), max(8, w // 4))
    d = depth + wave
    n_layers = int(gen.integers(3, 6))
    cuts = np.sort(gen.uniform(0.05, 0.95, n_layers))
    levels = gen.uniform(0.45, 0.95, n_layers + 1)
    tissue = np.full((th, tw), levels[0], np.float32)
    for cut, level in zip(cuts, levels[1:]):
        tissue[d > cut] = level
        band = np.abs(d - cut) < 0.006  # bright interfaces (fascia)
        tissue[band] = 1.15
    tissue = cv2().GaussianBlur(tissue, (0, 0), 1.2)
    tissue *= 1.0 + 0.25 * smooth_noise(gen, (th, tw), max(6, w // 12))
    # speckle: Rayleigh noise, blurred more laterally than axially, mean 1
    speck = gen.rayleigh(1.0, (th, tw)).astype(np.float32)
    speck = cv2().GaussianBlur(speck, (0, 0), sigmaX=1.6, sigmaY=0.8)
    speck /= float(speck.mean())
    texture = tissue * (0.35 + 0.65 * speck)
    # a vessel (anechoic tube) in some scenes: a distractor that is not a lesion
    if gen.random() < 0.5:
        yv = gen.uniform(0.3, 0.8) * h + m
        amp = gen.uniform(0.02, 0.06) * h
        freq = gen.uniform(0.5, 1.5)
        width = gen.uniform(0.012, 0.02) * h
        yy = yv + amp * np.sin(2 * math.pi * freq * xs[0] / tw + gen.uniform(0, 6.28))
        dist = np.abs(ys - yy[None, :])
        texture *= np.clip(dist / width - 0.5, 0.08, 1.0)
    lesions = []
    count = 1 + int(gen.random() < 0.4)
    sides = [0.0] if count == 1 else [-0.5, 0.5]
    for k in range(count):
        a = gen.uniform(0.075, 0.14) * h
        b = a * gen.uniform(0.6, 1.0)
        rel_r = gen.uniform(0.3, 0.72)
        rel_t = sides[k] + gen.uniform(-0.3, 0.3) * (0.5 if count == 2 else 1.0)
        lesions.append({
            "rel_r": rel_r, "rel_t": rel_t, "axes": (a, b), "angle": gen.uniform(-0.6, 0.6),
            "harmonics": [(gen.uniform(-0.08, 0.08), gen.uniform(0, 6.28)) for _ in range(3)],
            "anechoic": bool(gen.random() < 0.35), "dark": gen.uniform(0.18, 0.45),
            "path": Path2D(gen, (0.02 * w, 0.02 * h)), "breath": gen.uniform(0.0, 0.06),
        })
    return {"texture": texture, "tissue_path": Path2D(gen, (0.05 * h, 0.04 * h)), "lesions": lesions}


def make_frame(index: int, seed: int = 0, size: Tuple[int, int] = (480, 640)) -> Tuple[np.ndarray, np.ndarray]:
    """One ultrasound frame and its mask: ``(HxWx3 uint8 BGR, HxW uint8)`` with classes background, lesion."""
    h, w = int(size[0]), int(size[1])
    st = cached(("us-static", h, w), lambda: _static((h, w)))
    clip, step = divmod(int(index), CLIP_LENGTH)
    scene = cached(("us-clip", int(seed), clip, h, w), lambda: _clip_scene(seed, clip, (h, w)))
    t = step / float(CLIP_LENGTH)
    off = scene["tissue_path"].at(t)
    img = window(scene["texture"], (h, w), off) * st["gain"]
    mask = np.zeros((h, w), np.uint8)
    g = st["geometry"]
    for les in scene["lesions"]:
        ldx, ldy = les["path"].at(t)
        rad = g["r0"] + (g["r1"] - g["r0"]) * les["rel_r"]
        ang = g["half"] * les["rel_t"]
        cx = g["cx"] + rad * math.sin(ang) - off[0] + ldx
        cy = g["cy"] + rad * math.cos(ang) - off[1] + ldy
        breath = 1.0 + les["breath"] * math.sin(2 * math.pi * 2 * t)
        a, b = les["axes"]
        (x0, y0, x1, y1), inside = blob_field((h, w), (cx, cy), (a * breath, b), les["angle"],
                                              les["harmonics"], edge=2.0)
        if inside.size == 0:
            continue
        box = img[y0:y1, x0:x1]
        if les["anechoic"]:
            factor = 0.06
            # posterior acoustic enhancement below a cyst
            py0 = min(max(int(cy), y0), h)
            py1 = min(h, y1 + int(0.6 * (y1 - y0)))
            tail = img[py0:py1, x0:x1]
            if tail.size:
                chord = inside.sum(axis=0)
                cols = np.sqrt(chord / max(float(chord.max()), 1.0))[None, :]
                fade = np.linspace(1.0, 0.0, tail.shape[0], dtype=np.float32)[:, None] ** 2
                tail *= 1.0 + 0.3 * cols * fade
        else:
            factor = les["dark"]
        box *= 1.0 - (1.0 - factor) * inside
        mask[y0:y1, x0:x1][(inside > 0.5) & st["inside"][y0:y1, x0:x1]] = 1
    grey = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    ty, tx = st["text_idx"]
    grey[ty, tx] = st["text_val"]
    c = cv2()
    c.putText(grey, "F %05d  %.1f s" % (index, index / 30.0), (int(0.012 * w), h - 3 - int(0.006 * h)),
              c.FONT_HERSHEY_SIMPLEX, _text_scale(h), 200, 1, c.LINE_AA)
    return c.cvtColor(grey, c.COLOR_GRAY2BGR), mask


def sector_mask(size: Tuple[int, int]) -> np.ndarray:
    """``HxW bool``: True inside the imaging sector."""
    h, w = int(size[0]), int(size[1])
    return cached(("us-static", h, w), lambda: _static((h, w)))["inside"]


__all__: List[str] = ["CLASSES", "field_of_view", "geometry", "make_frame", "sector_mask"]
