"""Golden dumps: every named intermediate of a forward pass in one ``.npz``, and comparisons.

A golden dump is a plain NumPy ``.npz`` (a zip of ``.npy`` files, stored uncompressed) that
any language can read. Its members, in execution order:

    input.npy            the (N, 3, H, W) input the forward pass ran on
    conv1.npy ... fc.npy  every intermediate the forward emits (see :mod:`.shapes`), or the
                          ones a selection kept
    __manifest__.npy     uint8 bytes of a UTF-8 JSON manifest (architecture, dtype, versions,
                          weight and input sha256, per-tensor shape / dtype / sha256, the
                          execution order, suggested tolerances)

Comparison error, per tensor (reference r, candidate c, both read as float64)::

    max_abs = max |c - r|                                    over all elements
    max_rel = max_abs / max(max |r|, tiny)                   tiny = smallest normal float64
    pass    = max_abs <= atol + rtol * max |r|               (shapes equal but for size-1
                                                             axes, every difference finite)

This is a *norm-wise* criterion: the error of the whole tensor against its largest value.
An element-wise relative error would explode on the many values BN and ReLU push to (near)
zero, where a few ulps of absolute error are the right answer. ``atol`` only matters for
tensors that are (almost) all zero.

Name maps translate a candidate's tensor names (torch module names, Paddle layer names)
onto the names the forward pass emits; see :func:`load_map`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._files import atomic_write
from .errors import FormatError, InputError

FORMAT = "numpy-resnext-golden"
FORMAT_VERSION = 1
MANIFEST_KEY = "__manifest__"
INPUT_NAME = "input"
LOGITS_NAME = "fc"
TINY = float(np.finfo(np.float64).tiny)
MAPS_DIR = Path(__file__).resolve().parent / "maps"
SHIPPED_MAPS = ("torchvision", "timm", "paddle.vision")

# Suggested (rtol, atol) for the criterion above. float64: measured agreement with Paddle is
# 5e-12 and with torch 5e-15 norm-wise, so 1e-10 leaves a margin of 20x or more. float32: a
# float32 forward of ResNeXt50_32x4d against its float64 golden reaches 1.7e-6 (numbers in
# docs/golden.md); 1e-4 leaves room for other summation orders and real weights.
SUGGESTED_TOLERANCES = {"float64": {"rtol": 1e-10, "atol": 0.0},
                        "float32": {"rtol": 1e-4, "atol": 0.0}}

ERROR_DEFINITION = ("max_abs = max|c - r|; max_rel = max_abs / max(max|r|, tiny); "
                    "pass iff max_abs <= atol + rtol * max|r| (norm-wise, per tensor, in float64)")


# --- checksums ----------------------------------------------------------------------------
def _le_bytes(a) -> bytes:
    """The array's C-order little-endian bytes (the data section of its .npy)."""
    a = np.ascontiguousarray(a)
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def tensor_sha256(a) -> str:
    """sha256 of the array's C-order little-endian bytes (the data section of its .npy)."""
    return hashlib.sha256(_le_bytes(a)).hexdigest()


def params_sha256(params) -> str:
    """sha256 over the parameters in their (canonical) order: name, NUL, bytes, for each."""
    h = hashlib.sha256()
    for name, value in params.items():
        h.update(name.encode() + b"\0")
        h.update(_le_bytes(value))
    return h.hexdigest()


def file_sha256(path) -> str:
    """sha256 of a file; of a directory, sha256 over its sorted 'relative path  sha256' lines."""
    path = Path(path)
    if path.is_dir():
        lines = [f"{p.relative_to(path).as_posix()}  {file_sha256(p)}\n"
                 for p in sorted(path.rglob("*")) if p.is_file()]
        return hashlib.sha256("".join(lines).encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_number(v):
    """A float for the manifest, or None for NaN / infinity, which JSON cannot hold."""
    v = float(v)
    return v if math.isfinite(v) else None


def tensor_record(name, a) -> dict:
    """The manifest's entry for one tensor (``sum`` and ``abs_max`` are null if not finite)."""
    a64 = a.astype(np.float64, copy=False)
    return {"name": name, "shape": list(a.shape), "dtype": str(a.dtype), "sha256": tensor_sha256(a),
            "sum": _json_number(a64.sum()), "abs_max": _json_number(np.abs(a64).max()) if a.size else 0.0}


# --- the dump -----------------------------------------------------------------------------
def _patterns(select):
    """The names / glob patterns ``select`` keeps, or None for every tensor."""
    if select is None or select is True:
        return None
    return [select] if isinstance(select, str) else list(select)


def golden_dump(model, x, select=None, progress=None):
    """Run ``model`` on ``x`` and keep every named intermediate.

    model:    a :class:`~numpy_resnext.model.ResNeXt`.
    x:        (N, 3, H, W) array of the model's dtype.
    select:   None (every tensor) or names / glob patterns ("layer4.*", "fc"); the input is
              always kept, under ``"input"``, so a dump is self-contained.
    progress: optional ``progress(done, total, note)``, called after the stem, each block
              and the head.
    Returns ``(tensors, manifest)``: an OrderedDict name -> array in execution order
    (the input first) and the manifest dict (see :func:`make_manifest`).

    The walk is the one :meth:`ResNeXt.forward` makes (stem, blocks, head from
    :mod:`.blocks`, kept by the same :class:`~numpy_resnext.blocks.Capture`), repeated here
    only to report progress between blocks; the tests check that both give identical
    logits and names.
    """
    from .blocks import Capture, bottleneck, head, stem
    x = model.check_input(x)
    patterns = _patterns(select)
    keep, order = Capture(True if patterns is None else patterns), []
    total = len(model.block_plan) + 2

    def emit(name, value):                            # the manifest lists kept and skipped names
        order.append(name)
        keep(name, value)

    def step(done, note):
        if progress is not None:
            progress(done, total, note)
    y = stem(x, model.params, model.config, emit)
    step(1, "stem")
    for i, block in enumerate(model.block_plan):
        y = bottleneck(y, model.params, block, model.config, emit)
        step(i + 2, block.name)
    head(y, model.params, emit)
    step(total, "head")
    tensors = OrderedDict([(INPUT_NAME, x.copy())])
    tensors.update(keep.tensors)                      # filled in execution order
    return tensors, make_manifest(model, tensors, order, patterns)


def make_manifest(model, tensors, execution_order, select=None) -> dict:
    """Everything a consumer needs to trust and use a dump, as JSON-ready data."""
    from . import __version__
    x = tensors[INPUT_NAME]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"numpy_resnext": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "arch": {"name": model.config.name, "config": model.config.to_dict()},
        "dtype": str(model.dtype),
        "weights": {"params_sha256": params_sha256(model.params), "tensors": len(model.params)},
        "input": {"name": INPUT_NAME, "shape": list(x.shape), "dtype": str(x.dtype),
                  "sha256": tensor_sha256(x)},
        "select": select,
        "execution_order": [INPUT_NAME] + list(execution_order),
        "tensors": [tensor_record(n, a) for n, a in tensors.items()],
        "error_definition": ERROR_DEFINITION,
        "suggested_tolerances": SUGGESTED_TOLERANCES,
        "sha256_definition": "sha256 of each array's C-order little-endian bytes "
                             "(the data section of its .npy member)",
    }
    return json.loads(json.dumps(manifest))          # plain JSON types, as a reader sees them


def write_golden(path, tensors, manifest=None):
    """Write ``tensors`` (+ the manifest) as an uncompressed .npz, atomically.

    Members are written in the order of ``tensors``, each as ``NAME.npy``; the manifest as
    ``__manifest__.npy`` (uint8 JSON bytes). A failure half way leaves no file at ``path``.
    Returns the size in bytes.
    """
    path = os.fspath(path)
    for name in tensors:
        if name == MANIFEST_KEY or "/" in name or not name:
            raise InputError(f"golden output {path!r}: tensor name {name!r} is not allowed; "
                             f"expected a non-empty name without '/', other than {MANIFEST_KEY!r}")

    def write(tmp):
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, value in tensors.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(value), allow_pickle=False)
            if manifest is not None:
                blob = np.frombuffer(json.dumps(manifest, indent=1).encode("utf-8"), dtype=np.uint8)
                with zf.open(f"{MANIFEST_KEY}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, blob, allow_pickle=False)
    atomic_write(path, write)
    return os.path.getsize(path)


def read_golden(path, verify=True, what="golden file"):
    """``(tensors, manifest)`` from an .npz (ours or anyone's) or a single .npy.

    tensors:  OrderedDict name -> array in the file's member order.
    manifest: the parsed manifest, or None for an .npz without one (or an .npy, which is
              returned as ``{"fc": array}``: a single array is taken to be logits).
    verify:   check each tensor against the manifest's shape, dtype and sha256.
    Object arrays are refused (nothing is ever unpickled).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{what}: file {path!r} does not exist")
    if os.path.isdir(path):
        raise InputError(f"{what}: {path!r} is a directory; expected an .npz or .npy file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"{what}: {path!r} is not a readable .npz/.npy file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        return OrderedDict([(LOGITS_NAME, loaded)]), None
    tensors, manifest = OrderedDict(), None
    with loaded:
        for name in loaded.files:
            try:
                value = loaded[name]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise FormatError(f"{what}: member {name!r} of {path!r} cannot be read ({exc})") from None
            if name == MANIFEST_KEY:
                manifest = _parse_manifest(value, path, what)
            else:
                tensors[name] = value
    if manifest is not None and verify:
        verify_manifest(tensors, manifest, f"{what} {path!r}")
    return tensors, manifest


def _parse_manifest(value, path, what):
    try:
        manifest = json.loads(value.astype(np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{what}: the manifest of {path!r} is not valid JSON ({exc})") from None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != FORMAT:
        raise FormatError(f"{what}: {path!r} has a {MANIFEST_KEY} member that is not a "
                          f"{FORMAT} manifest (format={found!r})")
    return manifest


def verify_manifest(tensors, manifest, what="golden file"):
    """Raise FormatError naming every tensor whose shape, dtype or sha256 disagrees."""
    problems = []
    listed = {rec["name"]: rec for rec in manifest.get("tensors", [])}
    for name in listed.keys() - tensors.keys():
        problems.append(f"{name}: listed in the manifest but not stored")
    for name, a in tensors.items():
        rec = listed.get(name)
        if rec is None:
            problems.append(f"{name}: stored but not listed in the manifest")
        elif list(a.shape) != rec["shape"] or str(a.dtype) != rec["dtype"]:
            problems.append(f"{name}: manifest says {tuple(rec['shape'])} {rec['dtype']}, "
                            f"file holds {a.shape} {a.dtype}")
        elif tensor_sha256(a) != rec["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest (file modified or corrupt)")
    if problems:
        raise FormatError(f"{what}: {len(problems)} tensor(s) disagree with the manifest:\n  "
                          + "\n  ".join(sorted(problems)))


# --- name maps ------------------------------------------------------------------------------
@dataclass
class NameMap:
    """Candidate name -> canonical name (or None: ignore the tensor).

    Keys are exact names or patterns in which ``*`` stands for one or more characters other
    than ``.``; each ``*`` of the value is replaced, in order, by what the key's ``*``
    matched. Exact keys win over patterns; patterns are tried in file order; a name that
    matches nothing is kept unchanged. Keys starting with ``#`` are comments.
    """

    exact: dict = field(default_factory=dict)
    patterns: list = field(default_factory=list)     # (regex, value, key)
    source: str = "identity"

    def translate(self, name):
        if name in self.exact:
            return self.exact[name]
        for regex, value, _ in self.patterns:
            m = regex.fullmatch(name)
            if m:
                if value is None:
                    return None
                parts = iter(m.groups())
                return re.sub(r"\*", lambda _: next(parts), value)
        return name

    def apply(self, tensors, what="candidate"):
        """(OrderedDict canonical -> array, {canonical: original name}, [ignored names])."""
        out, origin, ignored = OrderedDict(), {}, []
        for name, value in tensors.items():
            canonical = self.translate(name)
            if canonical is None:
                ignored.append(name)
                continue
            if canonical in origin:
                raise FormatError(f"{what}: tensors {origin[canonical]!r} and {name!r} both map to "
                                  f"{canonical!r} under name map {self.source}; map one of them to null")
            out[canonical], origin[canonical] = value, name
        return out, origin, ignored


def parse_map(data, source="map") -> NameMap:
    """A :class:`NameMap` from the JSON object {candidate name or pattern: canonical or null}."""
    if not isinstance(data, dict):
        raise FormatError(f"name map {source}: expected a JSON object {{candidate: canonical}}, "
                          f"found {type(data).__name__}")
    nm = NameMap(source=source)
    for key, value in data.items():
        if key.startswith("#"):
            continue
        if value is not None and not isinstance(value, str):
            raise FormatError(f"name map {source}: value of {key!r} must be a name or null, found {value!r}")
        if "*" not in key:
            nm.exact[key] = value
            continue
        stars = key.count("*")
        if value is not None and value.count("*") not in (0, stars):
            raise FormatError(f"name map {source}: {key!r} has {stars} '*' but its value {value!r} "
                              f"has {value.count('*')}; use as many or none")
        regex = re.compile("".join("([^.]+)" if part == "*" else re.escape(part)
                                   for part in re.split(r"(\*)", key)))
        nm.patterns.append((regex, value, key))
    return nm


def load_map(spec) -> NameMap:
    """A shipped map by short name (torchvision, timm, paddle.vision), a JSON file, or a dict."""
    if spec is None:
        return NameMap()
    if isinstance(spec, NameMap):
        return spec
    if isinstance(spec, dict):
        return parse_map(spec, "(dict)")
    spec = os.fspath(spec)
    path = MAPS_DIR / f"{spec}.json" if spec in SHIPPED_MAPS else Path(spec)
    if not path.exists():
        raise InputError(f"--map: {spec!r} is neither a shipped map ({', '.join(SHIPPED_MAPS)}) "
                         f"nor an existing JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"name map {str(path)!r} is not valid JSON ({exc})") from None
    return parse_map(data, spec if spec in SHIPPED_MAPS else str(path))


# --- comparison -----------------------------------------------------------------------------
@dataclass
class Row:
    """One reference tensor's comparison."""

    name: str
    status: str                      # "pass", "FAIL", "shape", "missing"
    candidate_name: str | None = None
    ref_shape: tuple = ()
    cand_shape: tuple | None = None
    max_abs: float = math.nan
    max_rel: float = math.nan
    ref_abs_max: float = math.nan
    worst_index: tuple | None = None
    note: str = ""


@dataclass
class Report:
    """Per-tensor rows in the reference's execution order, and the verdict."""

    rows: list
    rtol: float
    atol: float
    ignored: list                    # candidate names the map told us to skip
    extra: list                      # candidate tensors with no reference counterpart
    strict: bool = False

    @property
    def compared(self):
        return [r for r in self.rows if r.status in ("pass", "FAIL", "shape")]

    @property
    def missing(self):
        return [r for r in self.rows if r.status == "missing"]

    @property
    def first_divergence(self):
        """The first reference tensor, in execution order, that does not pass (or None)."""
        for r in self.rows:
            if r.status in ("FAIL", "shape") or (self.strict and r.status == "missing"):
                return r
        return None

    @property
    def passed(self):
        return bool(self.compared) and self.first_divergence is None

    def to_dict(self):
        """The report as JSON-ready data; NaN and infinite numbers become null (JSON has
        neither: a strict reader such as JavaScript's JSON.parse refuses ``Infinity``), the
        row's status and note say what happened."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v
        first = self.first_divergence
        return {"passed": self.passed, "rtol": self.rtol, "atol": self.atol,
                "error_definition": ERROR_DEFINITION,
                "first_divergence": first.name if first else None,
                "compared": len(self.compared), "missing": [r.name for r in self.missing],
                "ignored": self.ignored, "extra": self.extra,
                "rows": [{k: clean(v) if not isinstance(v, tuple) else list(v)
                          for k, v in vars(r).items()} for r in self.rows]}

    def format(self, show="all"):
        """A table (``show``: "all" rows, "fail" only failing ones) and the verdict."""
        width = max([28] + [len(r.name) + len(r.candidate_name or "") + 4 for r in self.rows])
        lines = [f"{'tensor':<{width}} {'shape':<18} {'max_abs':>10} {'max_rel':>10} {'|ref|max':>10}  status"]
        for r in self.rows:
            if show == "fail" and (r.status == "pass" or (r.status == "missing" and not self.strict)):
                continue
            name = r.name if r.candidate_name in (None, r.name) else f"{r.name} <- {r.candidate_name}"
            shape = "x".join(map(str, r.ref_shape)) or "scalar"
            lines.append(f"{name:<{width}} {shape:<18} {_num(r.max_abs):>10} {_num(r.max_rel):>10} "
                         f"{_num(r.ref_abs_max):>10}  {r.status}{'  ' + r.note if r.note else ''}")
        lines.append(self.verdict())
        return "\n".join(lines)

    def verdict(self):
        n, total = len(self.compared), len(self.rows)
        worst = max(self.compared, key=lambda r: -1 if math.isnan(r.max_rel) else r.max_rel, default=None)
        head = (f"compared {n} of {total} reference tensors (rtol={self.rtol:g}, atol={self.atol:g}); "
                f"{len(self.missing)} not in the candidate, {len(self.ignored)} candidate tensors "
                f"ignored by the map, {len(self.extra)} without a reference counterpart")
        if worst is not None and not math.isnan(worst.max_rel):
            head += f"\nlargest relative error {worst.max_rel:.3g} at {worst.name}"
        first = self.first_divergence
        if not self.compared:
            return head + "\nFAIL: no tensor in common (wrong --map?)"
        if first is None:
            return head + "\nPASS: every compared tensor within tolerance"
        cand = f" (candidate {first.candidate_name!r})" if first.candidate_name not in (None, first.name) else ""
        detail = first.note or (f"max_abs {first.max_abs:.3g} > atol + rtol*|ref|max = "
                                f"{self.atol + self.rtol * first.ref_abs_max:.3g}")
        n_bad = sum(r.status in ("FAIL", "shape") for r in self.rows)
        return head + (f"\nFAIL: {n_bad} tensor(s) diverge; first in execution order: "
                       f"{first.name}{cand}: {detail}")


def _num(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def compare_tensor(name, ref, cand, rtol, atol, candidate_name=None) -> Row:
    """One :class:`Row`; shapes may differ only by axes of size 1 ((N,C,1,1) vs (N,C))."""
    row = Row(name, "pass", candidate_name, tuple(ref.shape), tuple(cand.shape))
    if ref.shape != cand.shape:
        if _squeezed(ref.shape) != _squeezed(cand.shape):
            row.status = "shape"
            row.note = f"shape mismatch: reference {tuple(ref.shape)}, candidate {tuple(cand.shape)}"
            return row
        row.note = f"candidate shape {tuple(cand.shape)} compared after dropping size-1 axes"
        cand = cand.reshape(ref.shape)
    for label, a in (("reference", ref), ("candidate", cand)):
        if a.dtype.kind not in "fiu":
            row.status, row.note = "shape", f"{label} has non-numeric dtype {a.dtype}"
            return row
    r = ref.astype(np.float64, copy=False)
    c = cand.astype(np.float64, copy=False)
    diff = np.abs(c - r)                                      # same shape as the reference
    row.ref_abs_max = float(np.abs(r).max()) if r.size else 0.0
    if r.size == 0:
        row.max_abs = row.max_rel = 0.0
        return row
    nan = ~np.isfinite(diff)
    if nan.any():
        row.status = "FAIL"
        row.worst_index = tuple(int(i) for i in np.unravel_index(int(np.argmax(nan)), diff.shape))
        row.max_abs = row.max_rel = math.inf
        row.note = f"{int(nan.sum())} non-finite difference(s), first at index {row.worst_index}"
        return row
    flat = int(np.argmax(diff))
    row.worst_index = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
    row.max_abs = float(diff.reshape(-1)[flat])
    row.max_rel = row.max_abs / max(row.ref_abs_max, TINY)
    if not row.max_abs <= atol + rtol * row.ref_abs_max:
        row.status = "FAIL"
        row.note = (f"worst at index {row.worst_index}: reference {r.reshape(-1)[flat]:.17g}, "
                    f"candidate {c.reshape(-1)[flat]:.17g}")
    return row


def default_tolerances(ref_manifest, dtypes):
    """(rtol, atol) for the least precise of ``dtypes``: the reference's suggestion if any."""
    key = "float32" if any(np.dtype(d) != np.float64 for d in dtypes) else "float64"
    table = (ref_manifest or {}).get("suggested_tolerances") or SUGGESTED_TOLERANCES
    tol = table.get(key, SUGGESTED_TOLERANCES[key])
    return float(tol["rtol"]), float(tol["atol"])


def compare(reference, candidate, rtol=None, atol=None, name_map=None, strict=False) -> Report:
    """Compare a candidate's tensors with a reference dump, in the reference's order.

    reference: a path (.npz) or a mapping name -> array in execution order.
    candidate: a path (.npz / .npy), a mapping name -> array, or one array (taken as the
               logits, compared with the reference's ``fc``).
    rtol/atol: tolerances of the criterion in the module docstring; None picks the
               reference manifest's suggestion for the less precise dtype involved.
    name_map:  None, a shipped map's short name, a JSON path, a dict or a :class:`NameMap`
               translating candidate names to the reference's.
    strict:    count reference tensors missing from the candidate as divergences.
    """
    ref_manifest = None
    if isinstance(reference, (str, os.PathLike)):
        reference, ref_manifest = read_golden(reference, what="reference")
    if isinstance(candidate, (str, os.PathLike)):
        candidate, _ = read_golden(candidate, what="candidate")
    elif isinstance(candidate, np.ndarray):
        candidate = OrderedDict([(LOGITS_NAME, candidate)])
    nm = load_map(name_map)
    mapped, origin, ignored = nm.apply(candidate)
    if rtol is None or atol is None:
        dtypes = [a.dtype for a in reference.values() if a.dtype.kind == "f"]
        dtypes += [a.dtype for a in mapped.values() if a.dtype.kind == "f"]
        d_rtol, d_atol = default_tolerances(ref_manifest, dtypes or [np.float64])
        rtol = d_rtol if rtol is None else rtol
        atol = d_atol if atol is None else atol
    if rtol < 0 or atol < 0:
        raise InputError(f"tolerances must be >= 0, found rtol={rtol}, atol={atol}")
    rows = []
    for name, ref in reference.items():
        if name not in mapped:
            rows.append(Row(name, "missing", None, tuple(ref.shape)))
            continue
        rows.append(compare_tensor(name, ref, mapped[name], rtol, atol, origin[name]))
    extra = [origin[n] for n in mapped if n not in reference]
    return Report(rows, float(rtol), float(atol), ignored, extra, strict)
