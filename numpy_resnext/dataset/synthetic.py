"""Data sets that need no download: seeded images made here, and seeded variants of the
photographs scikit-image ships.

``generated``: image i of seed s is drawn from ``numpy.random.default_rng((s, i, 19))``: a
size between 160 and 320 pixels a side, and one of eight pattern families (number i
mod 8): colour gradients, stripes, a checkerboard, rings, Gaussian blobs, smoothed noise,
rectangles, a sum of plane waves; each with random colours and frequencies, plus pixel noise
(``generated:N`` gives them label -1: a family is not an ImageNet class; :func:`write_folder`
files them by family in an ImageFolder tree).
The same seed gives the same bytes: the first 64 images hash alike under NumPy 1.26.4 and
2.4.6 (x86-64); another CPU's sin/cos/exp could round a pixel differently, which the run
store's ``input_sha256`` would show.

``skimage``: image i is a seeded crop (each side 55-100 % of the photograph's), a horizontal
flip half of the time, and a JPEG re-encode at quality 50-95 (Pillow) of one of the ten
public-domain / CC0 photographs below, from scikit-image's own data folder (its wheel ships
them; no download). Labels are -1: they are photographs, not ImageNet's classes.

==================  ======================================  ==========================
image               what                                    licence (scikit-image's
                                                            data/_fetchers.py)
==================  ======================================  ==========================
astronaut           Eileen Collins, NASA                    public domain
rocket              DSCOVR launch on Falcon 9, SpaceX       public domain
hubble_deep_field   Hubble eXtreme Deep Field, NASA         public domain
camera              a photographer (Lav Varshney)           CC0
coffee              a coffee cup (Rachel Michetti)          CC0
chelsea             a cat (Stefan van der Walt)             CC0
retina              a fundus photograph (M. Häggström)      CC0
brick, grass,       textures from CC0Textures               CC0
gravel
==================  ======================================  ==========================

:func:`write_folder` writes either set as files (PNG/JPEG with Pillow, or uint8 .npy
images without it), in an ImageFolder tree or flat with a ``val_list.txt``.
"""

from __future__ import annotations

import io
import os

import numpy as np

from .._files import atomic_write, save_npy
from .._optional import require
from ..errors import InputError

FAMILIES = ("gradient", "stripes", "checker", "rings", "blobs", "noise", "rectangles", "waves")
SKIMAGE_IMAGES = ("astronaut", "rocket", "hubble_deep_field", "camera", "coffee", "chelsea",
                  "retina", "brick", "grass", "gravel")
SIZE_RANGE = (160, 320)


def _colours(rng, k):
    return rng.uniform(0, 255, (k, 3))                                         # k, 3


def _pattern(family, rng, H, W):
    """A float (H, W, 3) picture of one family, values about 0..255."""
    yy, xx = np.meshgrid(np.linspace(0, 1, H), np.linspace(0, 1, W), indexing="ij")  # H, W
    c = _colours(rng, 2)
    if family == "gradient":
        t = np.clip(np.cos(rng.uniform(0, np.pi)) * xx + np.sin(rng.uniform(0, np.pi)) * yy, 0, 1)
    elif family == "stripes":
        angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 20)
        t = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy)))
    elif family == "checker":
        n = rng.integers(2, 12)
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float64)
    elif family == "rings":
        cy, cx, freq = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(4, 18)
        t = 0.5 + 0.5 * np.cos(2 * np.pi * freq * np.hypot(yy - cy, xx - cx))
    elif family == "blobs":
        t = np.zeros((H, W))
        for _ in range(rng.integers(2, 7)):
            cy, cx, s = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
            t += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        t = np.clip(t, 0, 1)
    elif family == "noise":
        coarse = rng.uniform(0, 1, (rng.integers(3, 9), rng.integers(3, 9)))
        iy = np.minimum((yy * coarse.shape[0]).astype(int), coarse.shape[0] - 1)
        ix = np.minimum((xx * coarse.shape[1]).astype(int), coarse.shape[1] - 1)
        t = coarse[iy, ix]
    elif family == "rectangles":
        t = np.zeros((H, W))
        for _ in range(rng.integers(2, 6)):
            y0, x0 = rng.uniform(0, 0.8, 2)
            y1, x1 = y0 + rng.uniform(0.1, 0.5), x0 + rng.uniform(0.1, 0.5)
            t[(yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)] = rng.uniform(0.3, 1)
    else:                                                                      # waves
        t = np.zeros((H, W))
        for _ in range(3):
            fy, fx, ph = rng.uniform(-8, 8), rng.uniform(-8, 8), rng.uniform(0, 2 * np.pi)
            t += np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
        t = (t + 3) / 6
    return c[0] + t[..., None] * (c[1] - c[0])                                  # H, W, 3


def generated_image(index: int, seed: int = 0, size=None) -> np.ndarray:
    """Image ``index`` of the generated set of ``seed``: uint8 RGB (H, W, 3); its label is
    ``index % 8`` (:data:`FAMILIES`). ``size`` (H, W) fixes the size instead of drawing it."""
    if index < 0:
        raise InputError(f"generated image index must be >= 0, found {index}")
    rng = np.random.default_rng((int(seed), int(index), 19))
    lo, hi = SIZE_RANGE
    H, W = (int(v) for v in rng.integers(lo, hi + 1, 2)) if size is None else size
    picture = _pattern(FAMILIES[index % len(FAMILIES)], rng, H, W)
    picture = picture + rng.normal(0, rng.uniform(2, 12), picture.shape)
    return np.clip(np.rint(picture), 0, 255).astype(np.uint8)


def generated_label(index: int) -> int:
    return index % len(FAMILIES)


def skimage_base(name: str) -> np.ndarray:
    """One of :data:`SKIMAGE_IMAGES` as uint8 RGB (grey ones replicated to three channels)."""
    data = require("skimage.data", f"the skimage data set (image {name!r})",
                   "(or use --images generated:N, which needs nothing)")
    a = np.asarray(getattr(data, name)())
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a[..., :3], dtype=np.uint8)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` encoded as a baseline JPEG at ``quality`` and decoded again (Pillow)."""
    Image = require("PIL.Image", "JPEG re-encoding of the skimage data set")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def skimage_image(index: int, seed: int = 0) -> np.ndarray:
    """Image ``index`` of the skimage set of ``seed``: a seeded crop, flip and JPEG
    re-encode of photograph ``index % 10``."""
    base = skimage_base(SKIMAGE_IMAGES[index % len(SKIMAGE_IMAGES)])
    rng = np.random.default_rng((int(seed), int(index), 23))
    H, W = base.shape[:2]
    h, w = (max(1, int(round(n * f))) for n, f in zip((H, W), rng.uniform(0.55, 1.0, 2)))
    top, left = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    crop = base[top:top + h, left:left + w]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    return jpeg_roundtrip(np.ascontiguousarray(crop), int(rng.integers(50, 96)))


def write_folder(root, n: int, kind="generated", seed=0, fmt="png", layout="imagefolder",
                 size=None) -> list:
    """Write ``n`` images of ``kind`` (generated | skimage) under ``root`` and a
    ``val_list.txt`` beside them (``relative/path label`` per line); returns the relative
    paths. ``fmt``: png or jpg (Pillow) or npy (uint8 (H, W, 3), no Pillow needed);
    ``layout``: imagefolder (``class_K/`` folders by label; unlabelled images stay flat) or flat."""
    if fmt not in ("png", "jpg", "npy"):
        raise InputError(f"format: expected png, jpg or npy, found {fmt!r}")
    if kind not in ("generated", "skimage"):
        raise InputError(f"kind: expected generated or skimage, found {kind!r}")
    os.makedirs(root, exist_ok=True)
    lines, paths = [], []
    for i in range(n):
        if kind == "generated":
            image, label = generated_image(i, seed, size), generated_label(i)
        else:
            image, label = skimage_image(i, seed), -1
        folder = f"class_{label:02d}" if layout == "imagefolder" and label >= 0 else ""
        rel = f"{folder + '/' if folder else ''}{kind}_{i:05d}.{fmt}"
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        path = os.path.join(root, rel)
        if fmt == "npy":
            save_npy(path, image)
        else:
            Image = require("PIL.Image", f"writing .{fmt} images", "(or write them as .npy)")
            atomic_write(path, lambda tmp, image=image: Image.fromarray(image).save(
                tmp, format="PNG" if fmt == "png" else "JPEG", **({"quality": 90} if fmt == "jpg" else {})))
        lines.append(f"{rel} {label}\n")
        paths.append(rel)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(lines)
    atomic_write(os.path.join(root, "val_list.txt"), write)
    return paths


__all__ = ["FAMILIES", "SKIMAGE_IMAGES", "generated_image", "generated_label", "jpeg_roundtrip",
           "skimage_base", "skimage_image", "write_folder"]
