"""Synthetic colonoscopy: a circular field of view of mucosa (texture, vessels, folds), vignetting,
specular highlights, and polyps (the target class) that are paler, shaded domes.

Per ``(seed, scene)`` the mucosa texture is cached (uint8 BGR, larger than the frame so the camera can
move over it); a frame slices it, applies the vignette and draws polyps and highlights in their boxes.
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

CLASSES = ["background", "polyp"]
_MARGIN = 0.15


def geometry(size: Tuple[int, int]) -> Dict[str, float]:
    """Centre and radius of the circular field of view."""
    h, w = size
    return {"cx": w / 2.0, "cy": h / 2.0, "radius": 0.48 * min(h, w)}


def field_of_view(size: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Bounding box ``(x, y, w, h)`` of the circular field of view."""
    g = geometry(size)
    h, w = size
    x0 = max(0, int(math.floor(g["cx"] - g["radius"])))
    y0 = max(0, int(math.floor(g["cy"] - g["radius"])))
    x1 = min(w, int(math.ceil(g["cx"] + g["radius"])))
    y1 = min(h, int(math.ceil(g["cy"] + g["radius"])))
    return x0, y0, x1 - x0, y1 - y0


def _static(size: Tuple[int, int]) -> Dict[str, Any]:
    h, w = size
    g = geometry(size)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt((xs - g["cx"]) ** 2 + (ys - g["cy"]) ** 2) / g["radius"]
    inside = d <= 1.0
    edge = np.clip((1.0 - d) * g["radius"] / 2.0, 0, 1)
    vignette = (1.0 - 0.6 * np.clip(d, 0, 1) ** 2) * edge
    vig8 = np.clip(vignette * 255, 0, 255).astype(np.uint8)
    text = np.zeros((h, w, 3), np.uint8)
    c = cv2()
    x0, y0, fw, fh = field_of_view(size)
    lines = ["ANON 0000", "ID 0000", "CF-H190L", "EXP 1/60"]
    font = c.FONT_HERSHEY_SIMPLEX
    widest = max(c.getTextSize(t, font, 1.0, 1)[0][0] for t in lines)
    scale = min(max(0.3, h / 1100.0), (x0 - 8) / float(widest))
    if scale >= 0.25:  # the processor's text, left of the circle; none if the frame has no room
        step = c.getTextSize("Ag", font, scale, 1)[0][1] + 6
        for i, line in enumerate(lines):
            c.putText(text, line, (4, y0 + step * (i + 1)), font, scale, (230, 230, 230), 1, c.LINE_AA)
    text[y0:y0 + fh, x0:x0 + fw] = 0  # never inside the ROI crop
    ty, tx = np.nonzero(text.max(axis=2))
    return {"inside": inside, "vignette": c.merge([vig8, vig8, vig8]), "text_idx": (ty, tx),
            "text_val": text[ty, tx], "geometry": g}


def _clip_scene(seed: int, clip: int, size: Tuple[int, int]) -> Dict[str, Any]:
    h, w = size
    m = int(_MARGIN * h)
    th, tw = h + 2 * m, w + 2 * m
    gen = rng(seed, clip, 2)
    c = cv2()
    base = np.array([gen.uniform(70, 110), gen.uniform(95, 130), gen.uniform(175, 225)], np.float32)  # BGR
    light = 1.0 + 0.22 * smooth_noise(gen, (th, tw), max(8, w // 5))
    fine = 1.0 + 0.07 * smooth_noise(gen, (th, tw), 4)
    # folds: soft dark ridges along a random direction, bent by noise
    ys, xs = np.mgrid[0:th, 0:tw].astype(np.float32)
    ang = gen.uniform(0, math.pi)
    period = gen.uniform(0.25, 0.45) * h
    coord = xs * math.cos(ang) + ys * math.sin(ang) + 0.08 * h * smooth_noise(gen, (th, tw), max(8, w // 6))
    folds = 1.0 - 0.25 * np.clip(np.sin(2 * math.pi * coord / period), 0, 1) ** 3
    # vessels: thin dark lines where a mid-frequency noise crosses zero
    vn = smooth_noise(gen, (th, tw), max(6, w // 16))
    strength = 0.4 * np.clip(0.45 + smooth_noise(gen, (th, tw), max(8, w // 8)), 0.0, 1.0)
    vessels = 1.0 - strength * np.exp(-(vn / 0.04) ** 2)
    shade = light * fine * folds
    tex = np.empty((th, tw, 3), np.float32)
    tex[..., 0] = base[0] * shade * (vessels * 0.9 + 0.1)
    tex[..., 1] = base[1] * shade * vessels
    tex[..., 2] = base[2] * shade * (vessels * 0.5 + 0.5)
    texture = np.clip(tex, 0, 255).astype(np.uint8)
    texture = c.GaussianBlur(texture, (0, 0), 0.8)
    g = geometry(size)
    polyps = []
    count = 1 + int(gen.random() < 0.35)
    for k in range(count):
        a = gen.uniform(0.08, 0.16) * h
        b = a * gen.uniform(0.7, 1.0)
        rr = gen.uniform(0.0, 0.5) * g["radius"]
        phi = gen.uniform(0, 2 * math.pi) if count == 1 else (k * math.pi + gen.uniform(-0.6, 0.6))
        if count == 2:
            rr = gen.uniform(0.3, 0.5) * g["radius"]
        polyps.append({
            "pos": (g["cx"] + rr * math.cos(phi), g["cy"] + rr * math.sin(phi)), "axes": (a, b),
            "angle": gen.uniform(0, math.pi), "harmonics": [(gen.uniform(-0.06, 0.06), gen.uniform(0, 6.28))
                                                             for _ in range(3)],
            "tint": np.array([gen.uniform(1.05, 1.3), gen.uniform(1.05, 1.3), gen.uniform(0.9, 1.05)],
                             np.float32),
            "light": gen.uniform(0, 2 * math.pi), "path": Path2D(gen, (0.03 * w, 0.03 * h)),
        })
    spots = [(gen.uniform(0.1, 0.9) * tw, gen.uniform(0.1, 0.9) * th, gen.uniform(2, 7) * h / 480.0,
              gen.uniform(1, 3) * h / 480.0, gen.uniform(0, 180)) for _ in range(int(gen.integers(4, 10)))]
    return {"texture": texture, "path": Path2D(gen, (0.1 * h, 0.1 * h)), "polyps": polyps, "spots": spots,
            "margin": m}


def make_frame(index: int, seed: int = 0, size: Tuple[int, int] = (480, 640)) -> Tuple[np.ndarray, np.ndarray]:
    """One endoscopy frame and its mask: ``(HxWx3 uint8 BGR, HxW uint8)`` with classes background, polyp."""
    h, w = int(size[0]), int(size[1])
    c = cv2()
    st = cached(("en-static", h, w), lambda: _static((h, w)))
    clip, step = divmod(int(index), CLIP_LENGTH)
    scene = cached(("en-clip", int(seed), clip, h, w), lambda: _clip_scene(seed, clip, (h, w)))
    t = step / float(CLIP_LENGTH)
    off = scene["path"].at(t)
    img = np.ascontiguousarray(window(scene["texture"], (h, w), off))
    mask = np.zeros((h, w), np.uint8)
    for pol in scene["polyps"]:
        pdx, pdy = pol["path"].at(t)
        center = (pol["pos"][0] + pdx, pol["pos"][1] + pdy)
        (x0, y0, x1, y1), inside = blob_field((h, w), center, pol["axes"], pol["angle"], pol["harmonics"],
                                              edge=1.5)
        if inside.size == 0:
            continue
        ys = (np.arange(y0, y1, dtype=np.float32)[:, None] - center[1]) / pol["axes"][1]
        xs = (np.arange(x0, x1, dtype=np.float32)[None, :] - center[0]) / pol["axes"][0]
        lx, ly = math.cos(pol["light"]), math.sin(pol["light"])
        r2 = xs * xs + ys * ys
        lit = xs * lx + ys * ly
        shading = 0.8 + 0.35 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) - 0.3 * lit
        outside = 1.0 - inside
        # a faint shadow just outside the rim, on the side away from the light
        rim = outside * np.exp(-((np.sqrt(r2) - 1.05) / 0.12) ** 2) * np.clip(lit, 0, 1)
        factor = (inside * shading)[:, :, None] * pol["tint"][None, None, :] + (outside * (1.0 - 0.35 * rim))[:, :, None]
        out = img[y0:y1, x0:x1] * factor
        img[y0:y1, x0:x1] = np.minimum(out, 255.0).astype(np.uint8)
        mask[y0:y1, x0:x1][(inside > 0.5) & st["inside"][y0:y1, x0:x1]] = 1
        # specular highlight on the dome, towards the light
        hx = int(center[0] - 0.35 * pol["axes"][0] * lx)
        hy = int(center[1] - 0.35 * pol["axes"][1] * ly)
        c.ellipse(img, (hx, hy), (max(1, int(0.09 * pol["axes"][0])), max(1, int(0.05 * pol["axes"][1]))),
                  math.degrees(pol["light"]), 0, 360, (250, 250, 250), -1, c.LINE_AA)
    m = scene["margin"]
    for sx, sy, ax, ay, ang in scene["spots"]:
        px, py = int(sx - m - off[0]), int(sy - m - off[1])
        if 0 <= px < w and 0 <= py < h:
            c.ellipse(img, (px, py), (max(1, int(ax)), max(1, int(ay))), ang, 0, 360, (245, 245, 245), -1,
                      c.LINE_AA)
    img = c.multiply(img, st["vignette"], scale=1.0 / 255.0)
    ty, tx = st["text_idx"]
    img[ty, tx] = st["text_val"]
    return img, mask


__all__: List[str] = ["CLASSES", "field_of_view", "geometry", "make_frame"]
