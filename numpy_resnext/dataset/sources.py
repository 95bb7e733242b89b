"""Where a data-set run's images come from: ids, labels and how to read image i.

``--images SRC`` is one of

================================  ==========================================================
a folder                          every image under it (recursive, sorted by relative path;
                                  .png .jpg .jpeg .bmp .webp .tif .tiff, and uint8 .npy);
                                  id = the relative path. When every image sits in a
                                  first-level sub-folder it is an ImageFolder tree (torchvision's
                                  rule): the sorted sub-folder names are classes 0, 1, ...
a list file (.txt, .lst, ...)     PaddleClas's val_list / MLPerf's val_map: ``path label`` per
                                  line (the label may be left out, or -1: unknown), paths
                                  relative to the list's folder (or ``--image-root``)
an .npy of shape (N, 3, H, W)     preprocessed tensors; ids "0" .. "N-1"
an .npz                           preprocessed tensors (3, H, W) or (1, 3, H, W); ids = its keys
``generated:N[:SEED]``            N seeded images made here (:mod:`.synthetic`; labels -1)
``skimage:N[:SEED]``              N seeded variants of scikit-image's photographs
================================  ==========================================================

Images are preprocessed by a :class:`~numpy_resnext.preprocess.Preset`; tensors are used as
stored. A :class:`Source` is what the driver knows (every id and label); its
:class:`SourceSpec` is what a worker needs to read item i, small enough to send with each task.
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

import numpy as np

from ..bounded import NpzMembers, check_regular, check_walk_depth, clip_list, read_bytes, read_npy
from ..checksums import file_sha256
from ..errors import FormatError, InputError
from ..preprocess import read_image
from . import synthetic

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".npy")
MAX_ITEMS = 10_000_000
GENERATED = ("generated", "skimage")


class SourceSpec(NamedTuple):
    """How to read an item: kind, an absolute path (folder, list root, tensor file), the preset."""

    kind: str                  # folder | imagefolder | list | npy | npz | generated | skimage
    path: str = ""
    preset: object = None      # a Preset for images, None for tensors
    seed: int = 0


class Source(NamedTuple):
    spec: SourceSpec
    ids: list
    labels: np.ndarray         # int64, -1 where unknown
    list_sha256: str           # of the kind, the ids and labels (and a tensor file's content)
    input_shape: tuple         # (3, H, W); None for images until a preset is chosen
    classes: list = []         # ImageFolder class names, in label order

    def describe(self) -> dict:
        return {"kind": self.spec.kind, "path": self.spec.path, "seed": self.spec.seed,
                "images": len(self.ids), "labelled": int((self.labels >= 0).sum()),
                "list_sha256": self.list_sha256, "classes": self.classes}


# --- reading one item (runs in the workers) -------------------------------------------------
_OPEN = {}        # per process: path -> (its file's identity, memory map or NpzMembers): one open per worker


def _opened(path, open_it):
    """``open_it(path)``, kept open for the next item of the same file; a file replaced at
    the same path (another inode, size or modification time) is opened again."""
    st = os.stat(path)
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    held = _OPEN.get(path)
    if held is None or held[0] != identity:
        if held is not None and hasattr(held[1], "close"):
            held[1].close()
        _OPEN[path] = held = (identity, open_it(path))
    return held[1]


def load_item(spec: SourceSpec, item_id: str, index: int) -> np.ndarray:
    """Item ``index`` (id ``item_id``) as a float (3, H, W) array; raises a ResNeXtError
    (or OSError) that names the image when it cannot be read."""
    if spec.kind in GENERATED:
        image = (synthetic.generated_image(index, spec.seed) if spec.kind == "generated"
                 else synthetic.skimage_image(index, spec.seed))
        return spec.preset(image)
    if spec.kind == "npy":
        tensors = _opened(spec.path, lambda p: np.load(p, mmap_mode="r", allow_pickle=False))
        return np.array(tensors[index])
    if spec.kind == "npz":
        archive = _opened(spec.path, lambda p: NpzMembers(p, "--images tensor archive", MAX_ITEMS))
        a = archive.read(item_id)                             # sizes checked before allocation
        return a[0] if a.ndim == 4 and a.shape[0] == 1 else a
    a = read_image(os.path.join(spec.path, item_id))
    if a.dtype != np.uint8:
        return a                                       # an .npy already preprocessed
    try:
        return spec.preset(a)
    except InputError as exc:
        raise InputError(f"image {item_id!r}: {exc}") from None


# --- finding the items (runs in the driver) ---------------------------------------------------
def _digest(kind, ids, labels, extra=""):
    h = hashlib.sha256(f"{kind}\n{extra}\n".encode())
    for i, label in zip(ids, labels):
        h.update(f"{i}\t{int(label)}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _walk(root):
    """Sorted relative paths of the image files under ``root`` (hidden entries skipped)."""
    found = []
    for here, dirs, files in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(here, root)
        check_walk_depth(0 if rel_dir == "." else rel_dir.count(os.sep) + 1, here)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTS):
                found.append(name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}")
        if len(found) > MAX_ITEMS:
            raise InputError(f"--images {root!r}: more than {MAX_ITEMS} images")
    return sorted(found)


def _folder(root, preset):
    ids = _walk(root)
    if not ids:
        raise InputError(f"--images {root!r}: no image files found (looked for "
                         f"{', '.join(IMAGE_EXTS)}, recursively)")
    spec = SourceSpec("folder", root, preset)
    if any("/" not in i for i in ids):              # images at the top: a plain folder
        return spec, ids, np.full(len(ids), -1, np.int64), []
    classes = sorted(d.name for d in os.scandir(root) if d.is_dir() and not d.name.startswith("."))
    index = {c: k for k, c in enumerate(classes)}
    empty = [c for c in classes if not any(i.startswith(c + "/") for i in ids)]
    if empty:
        raise InputError(f"--images {root!r} looks like an ImageFolder tree (every image in a "
                         f"class folder) but class folder(s) {clip_list(empty, 5)} hold no image; "
                         "torchvision's ImageFolder refuses that too (its labels would shift)")
    labels = np.array([index[i.split("/", 1)[0]] for i in ids], np.int64)
    return spec._replace(kind="imagefolder"), ids, labels, classes


def parse_list(text: str, where: str):
    """(ids, labels) of 'path label' lines (label optional or -1; blank and # lines skipped)."""
    ids, labels, seen = [], [], {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        path, label = (parts[0], parts[1]) if len(parts) == 2 and parts[1].lstrip("-").isdigit() else (line, "-1")
        if int(label) < -1:
            raise InputError(f"{where} line {n}: label must be >= 0 (or -1: unknown), found {label}")
        if path in seen:
            raise InputError(f"{where}: {path!r} is listed twice (lines {seen[path]} and {n})")
        seen[path] = n
        ids.append(path)
        labels.append(int(label))
        if len(ids) > MAX_ITEMS:
            raise InputError(f"{where}: more than {MAX_ITEMS} lines")
    if not ids:
        raise InputError(f"{where}: no 'path label' lines found")
    return ids, np.array(labels, np.int64)


def _tensors_npy(path):
    check_regular(path, "--images tensor file")
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"--images {path!r}: not a readable .npy array ({str(exc)[:200]})") from None
    if a.dtype.kind != "f" or a.ndim != 4 or a.shape[1] != 3 or a.shape[0] < 1:
        raise InputError(f"--images {path!r}: expected float (N, 3, H, W) preprocessed tensors, "
                         f"found {a.dtype} {a.shape}")
    return [str(i) for i in range(a.shape[0])], tuple(a.shape[1:])


def _tensors_npz(path):
    """(ids, (3, H, W)) of an .npz of preprocessed tensors, from the members' .npy headers
    (every member checked as the weight readers check them; no tensor is read here)."""
    with NpzMembers(path, "--images tensor archive", MAX_ITEMS) as z:
        ids = z.names
        if not ids:
            raise FormatError(f"--images {path!r}: the archive holds no .npy member (one per image)")
        shapes = {}
        for i in ids:
            shape, dtype = z.header(i)
            if dtype.kind != "f":
                raise InputError(f"--images {path!r}: member {i!r} is {dtype}, expected float tensors")
            shapes.setdefault(shape[1:] if len(shape) == 4 and shape[0] == 1 else shape, []).append(i)
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[0] != 3:
        raise InputError(f"--images {path!r}: every member must be (3, H, W) of one size, found "
                         + "; ".join(f"{list(s)} ({clip_list(v, 3)})" for s, v in shapes.items()))
    return ids, tuple(next(iter(shapes)))


def _generated(images, preset):
    parts = images.split(":")
    try:
        n, seed = int(parts[1]), int(parts[2]) if len(parts) > 2 else 0
    except (IndexError, ValueError):
        raise InputError(f"--images {images!r}: expected {parts[0]}:N or {parts[0]}:N:SEED") from None
    if not 1 <= n <= MAX_ITEMS:
        raise InputError(f"--images {images!r}: N must be between 1 and {MAX_ITEMS}, found {n}")
    if parts[0] == "skimage":
        synthetic.skimage_base(synthetic.SKIMAGE_IMAGES[0])       # scikit-image present?
    # labels -1: a pattern family is not an ImageNet class (write_folder's ImageFolder tree
    # labels images by family, for tests of the labelled path)
    return SourceSpec(parts[0], "", preset, seed), [f"{parts[0]}-{seed}-{i:06d}" for i in range(n)], \
        np.full(n, -1, np.int64)


def open_source(images, preset, limit=None, labels_file=None, image_root=None) -> Source:
    """The :class:`Source` of ``--images`` (see the module docstring)."""
    images = os.fspath(images)
    classes, extra, shape = [], "", None
    if images.split(":")[0] in GENERATED and not os.path.exists(images):
        spec, ids, labels = _generated(images, preset)
        extra = f"seed {spec.seed}"
    elif os.path.isdir(images):
        spec, ids, labels, classes = _folder(os.path.abspath(images), preset)
    elif not os.path.exists(images):
        raise InputError(f"--images {images!r} does not exist (expected a folder, a list file, "
                         "an .npy/.npz of tensors, generated:N or skimage:N)")
    elif images.lower().endswith((".npy", ".npz")):
        ids, shape = (_tensors_npy if images.lower().endswith(".npy") else _tensors_npz)(images)
        spec = SourceSpec(images.lower()[-3:], os.path.abspath(images), None)
        labels, extra = np.full(len(ids), -1, np.int64), file_sha256(images)
        preset = None
    else:
        text = read_bytes(images, "image list", limit=1 << 30).decode("utf-8", "surrogateescape")
        ids, labels = parse_list(text, images)
        root = os.path.abspath(image_root or os.path.dirname(os.path.abspath(images)))
        spec = SourceSpec("list", root, preset)
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be at least 1, found {limit}")
        ids, labels = ids[:limit], labels[:limit]
    if labels_file is not None:
        labels = read_labels(labels_file, ids)
    if preset is not None:                   # images: the preset fixes the input size
        shape = (3, preset.crop, preset.crop)
    return Source(spec, list(ids), labels, _digest(spec.kind, ids, labels, extra), shape, classes)


def read_labels(path, ids) -> np.ndarray:
    """Labels of ``ids`` from ``--labels``: an int .npy in id order, or 'id label' lines
    (labels of other ids are ignored; every id of the run needs one)."""
    path = os.fspath(path)
    if path.lower().endswith(".npy"):
        a = read_npy(path, "--labels")
        if a.dtype.kind not in "iu" or a.shape != (len(ids),):
            raise InputError(f"--labels {path!r}: expected {len(ids)} integer labels in id order, "
                             f"found {a.dtype} {a.shape}")
        return a.astype(np.int64)
    text = read_bytes(path, "label list", limit=1 << 30).decode("utf-8", "surrogateescape")
    names, values = parse_list(text, f"--labels {path}")
    table = dict(zip(names, values.tolist()))
    missing = [i for i in ids if i not in table]
    if missing:
        raise InputError(f"--labels {path!r}: no label for {len(missing)} of the {len(ids)} images, "
                         f"e.g. {clip_list(missing, 5)}")
    return np.array([table[i] for i in ids], np.int64)


__all__ = ["GENERATED", "IMAGE_EXTS", "Source", "SourceSpec", "load_item", "open_source",
           "parse_list", "read_labels"]
