"""Attack classes for the inputs beyond weight files: arrays given as --input / --dout or to
compare, compare's JSON (the golden manifest, --map files) and name patterns, special
files in those places, torch .pth (zip and legacy) and .safetensors files, and every
command that writes a file. Same conventions as tests/_attacks.py; the worker
(tests/_attack_worker.py) fills the CLI templates ({path} the case's file, {w} a tiny
weight file, {x} an input, {dout} a d(logits), {dump} a reference dump, {work} a scratch
directory).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np

from _attacks import (P61, _binunicode, _case, _deflate_bomb_zip, _npy_header, _npz, _proto4)
from numpy_resnext.io.torch.file import LEGACY_MAGIC

FORWARD = ["forward", "--weights", "{w}", "--input", "{path}", "--output", "{work}/o.npy"]
GRAD_INPUT = ["grad", "--weights", "{w}", "--input", "{path}", "--dout", "{dout}",
              "--output", "{work}/g.npz"]
GRAD_DOUT = ["grad", "--weights", "{w}", "--dtype", "float32", "--input", "{x}", "--dout", "{path}",
             "--output", "{work}/g.npz"]
CMP_REF = ["compare", "{path}", "{dump}"]
CMP_CAND = ["compare", "{dump}", "{path}"]
CMP_MAP = ["compare", "{dump}", "{dump}", "--map", "{path}"]


def _hostile_arrays(root, tag):
    """(name, path, regex) for .npy/.npz files that must not load: sizes, dtypes, bombs,
    damaged zips, the wrong container."""
    out = []
    for name, shape in (("1e12", (10 ** 12,)), ("1e6x1e6", (10 ** 6, 10 ** 6)),
                        ("short", (1, 3, 32, 33))):
        p = root / f"{tag}_npy_{name}.npy"
        p.write_bytes(_npy_header(shape) + bytes(4 * 3 * 32 * 32))
        out.append((f"npy-{name}", p, r"truncated|would need"))
    p = root / f"{tag}_npy_object.npy"
    p.write_bytes(_npy_header((4,), "|O") + bytes(64))
    out.append(("npy-object", p, r"not a plain numeric dtype"))
    p = root / f"{tag}_empty.npy"
    p.write_bytes(b"")
    out.append(("empty", p, r"the file is empty|not an \.npy array"))
    for mib in (256, 2047):
        p = root / f"{tag}_bomb_{mib}.npz"
        p.write_bytes(_deflate_bomb_zip("fc.npy", mib << 20))
        out.append((f"npz-bomb-{mib}MiB", p, r"would expand from \d+ to \d+ bytes|would need"))
    blob = io.BytesIO()
    np.savez_compressed(blob, fc=np.arange(50_000, dtype=np.float32))
    blob = blob.getvalue()
    for cut in (100, len(blob) // 2):
        p = root / f"{tag}_cut_{cut}.npz"
        p.write_bytes(blob[:cut])
        out.append((f"npz-cut-{cut}", p, r"not a readable \.npz|neither an \.npy"))
    at = blob.index(b"PK\x03\x04") + 30 + len("fc.npy") + 300
    flipped = bytearray(blob)
    flipped[at] ^= 0xFF
    p = root / f"{tag}_flip.npz"
    p.write_bytes(bytes(flipped))
    out.append(("npz-bit-flip", p, r"damaged archive member|truncated|unreadable \.npy header"))
    raw = bytearray(blob)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = raw.index(sig)
        raw[i + off:i + off + 2] = struct.pack("<H", 1)              # encrypted
    p = root / f"{tag}_encrypted.npz"
    p.write_bytes(bytes(raw))
    out.append(("npz-encrypted", p, r"encrypted"))
    p = root / f"{tag}_member_txt.npz"
    _npz(p, {"notes.txt": b"hello"})
    out.append(("npz-not-npy-member", p, r"is not an \.npy array"))
    return out


def arrays_as_inputs(root):
    cases = []
    for name, p, match in _hostile_arrays(root, "in"):
        if p.suffix == ".npz":       # an archive as --input is refused for what it holds
            match = match + r"|found an \.npz archive"
        _case(cases, "input-npy", name, p, "input", match, cli=[FORWARD, GRAD_INPUT])
        _case(cases, "dout-npy", name, p, "input", match, cli=[GRAD_DOUT])
    for name, p, match in _hostile_arrays(root, "cmp"):
        _case(cases, "compare-candidate-npz", name, p, "candidate", match, cli=[CMP_CAND])
        _case(cases, "compare-reference-npz", name, p, "reference", match, cli=[CMP_REF])
    return cases


def _dump_with_manifest(path, text: bytes):
    np.savez(path, fc=np.zeros((1, 3), np.float32),
             __manifest__=np.frombuffer(text, np.uint8))


MANIFEST = {"format": "numpy-resnext-golden", "format_version": 1}


def compare_json(root):
    cases = []
    for depth in (101, 1000, 100_000):
        text = b'{"format": "numpy-resnext-golden", "x": ' + b"[" * depth + b"]" * depth + b"}"
        p = root / f"manifest_deep_{depth}.npz"
        _dump_with_manifest(p, text)
        _case(cases, "compare-manifest-json", f"deep-{depth}", p, "reference",
              rf"JSON nested {depth + 1} levels deep", cli=[CMP_REF])
    wrong = {
        "tensors-ints": ({"tensors": [1, 2, 3]}, r"tensors\[0\] should be an object"),
        "tensors-string": ({"tensors": "fc"}, r"tensors should be an array"),
        "record-no-shape": ({"tensors": [{"name": "fc", "dtype": "float32", "sha256": "0"}]},
                            r"tensors\[0\] lacks 'shape'"),
        "shape-strings": ({"tensors": [{"name": "fc", "dtype": "float32", "sha256": "0",
                                        "shape": ["1", "3"]}]}, r"tensors\[0\]\.shape\[0\]"),
        "name-int": ({"tensors": [{"name": 7, "dtype": "float32", "sha256": "0",
                                   "shape": [1, 3]}]}, r"tensors\[0\]\.name should be a string"),
        "tolerances-list": ({"suggested_tolerances": [1]}, r"suggested_tolerances should be"),
        "tolerance-string": ({"suggested_tolerances": {"float32": {"rtol": "x", "atol": 0}}},
                             r"suggested_tolerances\['float32'\]\.rtol"),
        "not-object": (None, r"not a numpy-resnext-golden manifest"),
    }
    for name, (extra, match) in wrong.items():
        text = json.dumps([1, 2] if extra is None else dict(MANIFEST, **extra)).encode()
        p = root / f"manifest_{name}.npz"
        _dump_with_manifest(p, text)
        _case(cases, "compare-manifest-json", name, p, "reference", match, cli=[CMP_REF])
    for name, text, match in (("long-int", b'{"format": 1%s}' % (b"0" * 5000), r"digits"),
                              ("infinity", b'{"format": Infinity}', r"not a JSON number"),
                              ("not-utf8", b'{"format": "\xff\xfe"}', r"not UTF-8")):
        p = root / f"manifest_{name}.npz"
        _dump_with_manifest(p, text)
        _case(cases, "compare-manifest-json", name, p, "reference", match, cli=[CMP_REF])
    # --map files
    for depth in (101, 1000, 100_000):
        p = root / f"map_deep_{depth}.json"
        p.write_bytes(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")
        _case(cases, "map-json", f"deep-{depth}", p, "map", rf"JSON nested {depth + 1} levels",
              cli=[CMP_MAP])
    for name, text, match in (("list", b'["a", "b"]', r"the top level should be an object"),
                              ("value-int", b'{"a": 3}', r"must be a name or null"),
                              ("value-list", b'{"a*": ["x"]}', r"must be a name or null"),
                              ("stars", b'{"a*.*": "*"}', r"has 2 '\*' but its value"),
                              ("broken", b'{"a": ', r"not valid"),
                              ("long-int", b'{"a": %s}' % (b"9" * 5000), r"digits")):
        p = root / f"map_{name}.json"
        p.write_bytes(text)
        _case(cases, "map-json", name, p, "map", match, cli=[CMP_MAP])
    return cases


def globs(root):
    """Patterns that make a backtracking matcher (fnmatch's regex, a map key's regex) take
    hours on a long name; each must finish at once and not match."""
    cases = []
    for n, stars in ((2_000, 6), (20_000, 10), (50_000, 20)):
        name = "a" * n + "b"
        spec = {"pattern": "*a" * stars + "*c*b", "map_key": "*a" * stars + "*c*b", "name": name}
        p = root / f"glob_{n}_{stars}.json"
        p.write_text(json.dumps(spec))
        _case(cases, "glob-backtracking", f"{n}-{stars}", p, "glob", r"no match, as expected",
              cli=False)
        # through the CLI: a candidate whose one tensor has the long name, and a map key
        # that would backtrack on it (the comparison completes: nothing in common)
        cand = root / f"glob_cand_{n}.npz"
        np.savez(cand, **{"a" * min(n, 60_000) + "x.b": np.zeros(3)})   # zip names < 64 KiB
        m = root / f"glob_map_{n}_{stars}.json"
        m.write_text(json.dumps({"*a" * stars + "*c*b": "fc"}))
        _case(cases, "glob-backtracking", f"{n}-{stars}-map", m, "map", r".",
              cli=[["compare", "{dump}", str(cand), "--map", "{path}"]], completes=True)
    return cases


def fifos(root):
    cases = []
    for name, api, cli in (("input", "input", [FORWARD, GRAD_INPUT]), ("dout", "input", [GRAD_DOUT]),
                           ("candidate", "candidate", [CMP_CAND]),
                           ("reference", "reference", [CMP_REF]), ("map", "map", [CMP_MAP])):
        for ext in (".npy", ".npz", ".json"):
            p = root / f"fifo2_{name}{ext}"
            os.mkfifo(p)
            _case(cases, "special-fifo-inputs", f"{name}{ext}", p, api, r"a FIFO \(named pipe\)",
                  cli=cli)
    for name in ("w.pth", "w.safetensors", "model.safetensors.index.json"):
        p = root / f"fifo2_{name}"
        os.mkfifo(p)
        _case(cases, "special-fifo-inputs", name, p, "weights", r"FIFO|not a regular file")
    return cases


# --- torch ----------------------------------------------------------------------------------
def _long(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _tuple(values) -> bytes:
    return b"(" + b"".join(_long(v) for v in values) + b"t"


def _tensor_pickle(numel, size, stride, offset=0) -> bytes:
    """A one-tensor state dict as torch.save pickles it (protocol 2, BINPERSID)."""
    return (b"\x80\x02}(" + _binunicode("fc.weight")
            + b"ctorch._utils\n_rebuild_tensor_v2\n("
            + b"(" + _binunicode("storage") + b"ctorch\nFloatStorage\n" + _binunicode("0")
            + _binunicode("cpu") + _long(numel) + b"tQ"
            + _long(offset) + _tuple(size) + _tuple(stride) + b"\x89"
            + b"ccollections\nOrderedDict\n)RtRu.")


def _torch_zip(path, pkl: bytes, data: bytes = b"\0" * 16):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", b"little")
        z.writestr("archive/data/0", data)
        z.writestr("archive/version", b"3\n")


def _legacy(path, obj_pickle: bytes, keys=()):
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    path.write_bytes(pickle.dumps(LEGACY_MAGIC, 2) + pickle.dumps(1001, 2)
                     + pickle.dumps(sys_info, 2) + obj_pickle + pickle.dumps(list(keys), 2))


def _hostile_pickles():
    """(class, name, pickle bytes, regex) shared by the zip and legacy containers."""
    out = []
    for depth in (20, 60, 90):                       # shared references: converted once
        x = [1.0]
        for _ in range(depth - 2):
            x = [x, x]
        out.append(("torch-pickle-shared-refs", str(depth), pickle.dumps({"w": x}, 2),
                    r"no state dict found|no tensors|holds"))
    for depth in (150, 1000, 100_000):               # deep nesting (a tuple key, a list)
        out.append(("torch-pickle-deep", f"key-{depth}",
                    _proto4(b"}" + b")" + b"\x85" * depth + b"K\x01s"), r"nested more than 100"))
        out.append(("torch-pickle-deep", f"list-{depth}",
                    b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".", r"nested more than 100"))
    for n in (1000, 10_000, 60_000):                 # integer keys sharing one hash
        items = b"".join(b"\x8a" + bytes([len(k)]) + k + b"K\x00" for k in
                         ((P61 * i).to_bytes(12, "little", signed=True) for i in range(1, n + 1)))
        out.append(("torch-pickle-int-keys", str(n), _proto4(b"}(" + items + b"u"),
                    r"integer of 2\*\*61 or more"))
    for n in (10_000, 1_000_000):                    # a huge key, reported briefly
        out.append(("torch-pickle-huge-key", str(n),
                    pickle.dumps({"k" * n: 1.0, "x" * n: 2.0}, 2),
                    r"no state dict found: the top-level keys are 'kkk.*\.\.\. \(\d+ characters\)"))
    return out


def torch_files(root):
    cases = []
    for cls, name, pkl, match in _hostile_pickles():
        p = root / f"t_{cls}_{name}.pth"
        _torch_zip(p, pkl)
        _case(cases, cls, f"zip-{name}", p, "torch", match)
        if pkl.startswith(b"\x80\x02"):
            q = root / f"tl_{cls}_{name}.pth"
            _legacy(q, pkl)
            _case(cases, cls, f"legacy-{name}", q, "torch", match)
    for name, numel, size, stride, match in (
            ("numel-2e40", 2 ** 40, (4,), (1,), r"should hold 1099511627776 elements"),
            ("numel-2e62", 2 ** 62, (4,), (1,), r"should hold \d+ elements"),
            ("extent", 4, (2 ** 20, 2 ** 20), (1, 1), r"reaches element|elements from a storage"),
            ("huge-size", 4, (2 ** 70,), (1,), r"integer of 2\*\*61 or more"),
            ("negative", 4, (-1, 4), (4, 1), r"non-negative")):
        p = root / f"t_storage_{name}.pth"
        _torch_zip(p, _tensor_pickle(numel, size, stride))
        _case(cases, "torch-storage-size", name, p, "torch", match)
    # a genuine zip with a data.pkl declared far larger than the file
    good = root / "t_good.pth"
    _torch_zip(good, _tensor_pickle(4, (2, 2), (2, 1)))
    blob = good.read_bytes()
    for name, at_sig in (("local", b"PK\x03\x04"), ("central", b"PK\x01\x02")):
        raw = bytearray(blob)
        i = raw.index(at_sig)
        off = 22 if at_sig == b"PK\x03\x04" else 24      # uncompressed size field
        raw[i + off:i + off + 4] = struct.pack("<I", 0xFFFFFFF0)
        p = root / f"t_pkl_size_{name}.pth"
        p.write_bytes(bytes(raw))
        # zipfile reads sizes from the central directory: a local header's may go unnoticed
        _case(cases, "torch-zip-damaged", f"pkl-size-{name}", p, "torch",
              r"declares \d+ bytes|corrupt|not a readable|truncated|Bad|not a torch"
              if name == "central" else r".", may_load=name == "local")
    _cut_and_flip(cases, root, blob, 6, "torch-zip-damaged", "t", ".pth", "torch")
    return cases


def _cut_and_flip(cases, root, blob, n, cls, stem, suffix, kind):
    """n copies of ``blob`` cut short and n with one byte flipped, spread over the file: a cut
    file must give a clean error, a flipped one may load (the byte may sit in tensor data)."""
    for i in range(n):
        p = root / f"{stem}_cut_{i}{suffix}"
        p.write_bytes(blob[:len(blob) * (i + 1) // (n + 1)])
        _case(cases, cls, f"cut-{i}", p, kind, r".", may_load=False)
        flipped = bytearray(blob)
        flipped[(len(blob) - 1) * (i + 1) // (n + 1)] ^= 0x5A
        p = root / f"{stem}_flip_{i}{suffix}"
        p.write_bytes(bytes(flipped))
        _case(cases, cls, f"flip-{i}", p, kind, r".", may_load=True)


# --- safetensors ----------------------------------------------------------------------------
def _st(path, header: bytes, data: bytes = b"", length=None):
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)


def safetensors_files(root):
    cases = []
    for exp in (32, 40, 63):                         # header length far beyond the file
        p = root / f"st_len_{exp}.safetensors"
        _st(p, b'{"a": 1}', length=2 ** exp)
        _case(cases, "safetensors-header-size", f"len-2e{exp}", p, "safetensors",
              r"header length|not a safetensors file")
    for name, shape, match in (("1e12", [10 ** 12], r"needs \d+ bytes|would need"),
                               ("2e80", [2 ** 80], r"invalid axis|would need"),
                               ("axes-40", [1] * 40, r"non-negative ints|axes"),
                               ("digits", None, r"digits")):
        if shape is None:
            header = b'{"w": {"dtype": "F32", "shape": [%s], "data_offsets": [0, 4]}}' % (
                b"9" * 5000)
        else:
            header = json.dumps({"w": {"dtype": "F32", "shape": shape,
                                       "data_offsets": [0, 4]}}).encode()
        p = root / f"st_shape_{name}.safetensors"
        _st(p, header, bytes(4))
        _case(cases, "safetensors-header-size", f"shape-{name}", p, "safetensors", match)
    for depth in (101, 1000, 100_000):
        p = root / f"st_deep_{depth}.safetensors"
        _st(p, b'{"__metadata__": ' + b"[" * depth + b"]" * depth + b"}")
        _case(cases, "safetensors-json", f"deep-{depth}", p, "safetensors",
              rf"JSON nested {depth + 1} levels deep")
    for name, header, match in (
            ("list", b"[1, 2]", r"expected an object|not a safetensors file"),
            ("entry-int", b'{"w": 5}', r"expected \{dtype, shape, data_offsets\}"),
            ("dtype-list", b'{"w": {"dtype": [1], "shape": [1], "data_offsets": [0, 4]}}',
             r"dtype \[1\]"),
            ("offsets-neg", b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}',
             r"data_offsets"),
            ("metadata-int", b'{"__metadata__": {"a": 1}}', r"__metadata__ must map"),
            ("infinity", b'{"w": Infinity}', r"not a JSON number"),
            ("not-utf8", b'{"w\xff": 1}', r"not UTF-8")):
        p = root / f"st_{name}.safetensors"
        _st(p, header, bytes(4))
        _case(cases, "safetensors-json", name, p, "safetensors", match)
    from numpy_resnext.io.safetensors import encode_header
    arrays = {"fc.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
              "fc.bias": np.zeros(3, np.float32)}
    head, buffers = encode_header(arrays)
    blob = head + b"".join(a.tobytes() for a in buffers)
    _cut_and_flip(cases, root, blob, 5, "safetensors-damaged", "st", ".safetensors", "safetensors")
    for name, text, match in (("deep", b'{"weight_map": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                               r"JSON nested"),
                              ("escape", b'{"weight_map": {"w": "../w.safetensors"}}',
                               r"not a file name"),
                              ("ints", b'{"weight_map": [1, 2]}', r"weight_map")):
        d = root / f"st_index_{name}"
        d.mkdir()
        p = d / "model.safetensors.index.json"
        p.write_bytes(text)
        _case(cases, "safetensors-json", f"index-{name}", p, "weights", match)
    return cases


# --- outputs of every command ---------------------------------------------------------------
def _have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def command_outputs(root):
    cases = []
    blocker = root / "out_blocker"
    blocker.write_bytes(b"x")
    targets = (("name-max", lambda ext: root / ("n" * 300 + ext), r"file name too long"),
               ("parent-is-file", lambda ext: blocker / f"out{ext}", r"does not exist"),
               ("proc", lambda ext: f"/proc/self/out{ext}", r"cannot write|does not exist|denied"))
    commands = {
        "forward": (".npy", ["forward", "--weights", "{w}", "--input", "{x}", "--output", "{path}"]),
        "golden": (".npz", ["golden", "--weights", "{w}", "--dtype", "float32", "--input", "{x}",
                            "--output", "{path}"]),
        "grad": (".npz", ["grad", "--weights", "{w}", "--dtype", "float32", "--input", "{x}",
                          "--dout", "{dout}", "--output", "{path}"]),
        "grad-running": (".npz", ["grad", "--weights", "{w}", "--dtype", "float32", "--input",
                                  "{x}", "--dout", "{dout}", "--train", "--output", "{work}/g.npz",
                                  "--running", "{path}"]),
        "convert": (".npz", ["convert", "--weights", "{w}", "--output", "{path}"]),
        "compare-json": (".json", ["compare", "{dump}", "{dump}", "--json", "{path}"]),
    }
    if _have("matplotlib"):
        commands["explain-png"] = (".png", ["explain", "ResNeXt50_32x4d", "--init", "identity-bn",
                                            "--block", "layer1.0", "--input", "{x}", "--png",
                                            "{path}"])
    if _have("onnx"):
        commands["export-onnx"] = (".onnx", ["export", "--weights", "{w}", "--size", "32", "32",
                                             "--onnx", "{path}"])
    for cmd, (ext, argv) in commands.items():
        for name, target, match in targets:
            if cmd == "explain-png" and name == "name-max":
                continue       # explain needs a full-size architecture: seconds of work first
            path = target(ext)
            _case(cases, "output-commands", f"{cmd}-{name}", path, "save", match, cli=[argv],
                  leftovers=True, progress=cmd in ("export-onnx", "explain-png"))  # progress lines
    return cases


GENERATORS = [arrays_as_inputs, compare_json, globs, fifos, torch_files, safetensors_files,
              command_outputs]
