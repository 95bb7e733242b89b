"""Hostile, malformed and oversized inputs, generated at test time, one class at a time.

Each generator writes its files under ``root`` and returns cases: dicts with an ``id``, the
attack ``cls``, the ``path`` to feed, the ``api`` entry point that reads it ("weights":
numpy_resnext.io.load_weights, "paddle": read_paddle, "build": model.build, "image":
preprocess.load_image, "npz": bounded.read_npz, "json": bounded.load_json, "save": writing
an output), ``match``: a regular expression the error message must contain, and
``cli``: whether the case also runs through the command line. Every class comes in several
sizes. Nothing here depends on randomness: the same files every run.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import struct
import subprocess
import tempfile
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from numpy_resnext.io.paddle.records import encode_record

P61 = (1 << 61) - 1
try:
    from numpy._core import multiarray as _MULTIARRAY       # NumPy 2
except ImportError:                                          # NumPy 1
    from numpy.core import multiarray as _MULTIARRAY
try:
    import PIL  # noqa: F401
    HAVE_PIL = True
except ImportError:
    HAVE_PIL = False
NO_PIL = r"needs Pillow"                # what a PNG gives where Pillow is not installed


def _case(cases, cls, name, path, api, match, cli=True, **extra):
    cases.append(dict(id=f"{cls}-{name}", cls=cls, path=str(path), api=api, match=match,
                      cli=cli, **extra))


def _proto4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def _binunicode(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw


# --- pickles -------------------------------------------------------------------------------
def pickles(root):
    cases = []
    for depth in (20, 40, 60, 90):                   # shared references: loads, converted once
        x = [np.zeros(1, np.float32)]
        for _ in range(depth - 2):
            x = [x, x]
        p = root / f"share_{depth}.pdparams"
        p.write_bytes(pickle.dumps({"w": x}, 4))
        _case(cases, "pickle-shared-refs", str(depth), p, "weights",
              r"no tensors|unrecognised tensor names")
    for depth in (101, 1000, 100_000, 1_000_000):    # a deep tuple as a dict key
        p = root / f"deepkey_{depth}.pdparams"
        p.write_bytes(_proto4(b"}" + b")" + b"\x85" * depth + b"K\x01s"))
        _case(cases, "pickle-deep-key", str(depth), p, "weights", r"nested more than 100 deep")
    for n in (64, 1000, 10_000, 60_000):             # integer keys sharing one hash
        p = root / f"collide_{n}.pdparams"
        # written opcode by opcode: building such a dict here would itself be quadratic
        items = b"".join(b"\x8a" + bytes([len(k)]) + k + b"K\x00" for k in
                         ((P61 * i).to_bytes(12, "little", signed=True) for i in range(1, n + 1)))
        p.write_bytes(_proto4(b"}(" + items + b"u"))
        _case(cases, "pickle-colliding-keys", str(n), p, "weights", r"integer of 2\*\*61 or more")
    for n in (10_000, 100_000, 1_000_000, 5_000_000):  # a huge non-str key, reported
        p = root / f"hugekey_{n}.pdparams"
        p.write_bytes(pickle.dumps({b"k" * n: np.zeros(1, np.float32)}, 4))
        _case(cases, "pickle-huge-key", str(n), p, "weights",
              rf"key b'kkkk.*\.\.\. \({n} bytes\) is a bytes, expected str")
    for name, shape in (("neg", (-1, 4)), ("2e80", (2 ** 80,)), ("digits", (10 ** 3000,)),
                        ("zeroaxis", (0, 2 ** 40, 2 ** 40)), ("manyaxes", (1,) * 40),
                        ("float", (2.0, 2))):
        p = root / f"shape_{name}.pdparams"
        p.write_bytes(pickle.dumps({"conv1.weight": _FakeArray(shape)}, 2))
        _case(cases, "pickle-bad-shape", name, p, "weights",
              r"refused to unpickle: (array: )?(invalid axis|shape|array of shape .* would need)")
    for name, body in (("binbytes4g", b"B" + struct.pack("<I", 2 ** 32 - 1) + b"x" * 16),
                       ("binbytes8", b"\x8e" + struct.pack("<Q", 2 ** 62) + b"x"),
                       ("frame", b"\x95" + struct.pack("<Q", 2 ** 40)),
                       ("memo", b"}r" + struct.pack("<I", 2 ** 31)),
                       ("long4", b"\x8b" + struct.pack("<i", 2 ** 30) + b"\x01")):
        p = root / f"len_{name}.pdparams"
        p.write_bytes(b"\x80\x04" + body)
        _case(cases, "pickle-length", name, p, "weights",
              r"truncated or corrupt pickle|refused to unpickle")
    return cases


class _FakeArray:
    """Pickles exactly as an ndarray does, with a shape of our choosing in its state."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return (_MULTIARRAY._reconstruct, (np.ndarray, (0,), b"b"),
                (1, self.shape, np.dtype("float32"), False, bytes(8)))


class _Call:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def code_execution(root):
    """Pickles that would run code; the marker file must never appear."""
    cases = []
    marker = root / "executed"
    calls = [("os.system", _Call(os.system, f"touch {marker}")),
             ("eval", _Call(eval, f"open({str(marker)!r}, 'w')")),
             ("exec", _Call(exec, f"open({str(marker)!r}, 'w')")),
             ("open", _Call(open, str(marker), "w")),
             ("subprocess", _Call(subprocess.call, ["touch", str(marker)])),
             ("import", _Call(__import__, "os"))]
    for name, call in calls:
        for proto in (2, 4):
            p = root / f"exec_{name}_{proto}.pdparams"
            p.write_bytes(pickle.dumps({"w": call}, proto))
            _case(cases, "pickle-code-execution", f"{name}-p{proto}", p, "weights",
                  r"refused to unpickle: global .* is not on the allow-list", marker=str(marker))
    return cases


# --- split tensors -------------------------------------------------------------------------
def split_tensors(root):
    cases = []
    part = np.zeros(1000, np.float32)
    for n in (10, 1000, 100_000):                    # one slice listed n times: n * 4 kB
        info = {"w": {"OriginShape": [n * 1000], "slices": ["w@@.0"] * n}}
        p = root / f"split_repeat_{n}.pdparams"
        p.write_bytes(pickle.dumps({"w@@.0": part, "UnpackBigParamInfor@@": info}, 2))
        _case(cases, "split-tensor", f"repeat-{n}", p, "weights",
              r"split into \d+ slices|used twice")
    for name, info in (("empty-array", np.zeros(0)), ("list", [1, 2]), ("int", 7),
                       ("entry-array", {"w": np.zeros(2)})):
        p = root / f"splitinfo_{name}.pdparams"
        p.write_bytes(pickle.dumps({"w@@.0": part, "UnpackBigParamInfor@@": info}, 2))
        _case(cases, "split-tensor", f"info-{name}", p, "weights",
              r"UnpackBigParamInfor@@(\['w'\] is malformed| is a)")
    for name, table in (("array", {"w": np.zeros(3)}), ("list", {"w": ["x"]}),
                        ("int-keys", {1: "w"}), ("string", "w")):
        p = root / f"nametable_{name}.pdparams"
        p.write_bytes(pickle.dumps({"w": part, "StructuredToParameterName@@": table}, 4))
        _case(cases, "name-table", name, p, "weights",
              r"StructuredToParameterName@@ is .*, expected a dict \{key: parameter name\}")
    for name, shape, why in (("negative", [-1000], "not a list of non-negative"),
                             ("enormous", [2 ** 62], "invalid axis"),
                             ("large", [2 ** 35], "would need|hold 1000 elements"),
                             ("digits", [10 ** 40], "invalid axis"),
                             ("float", [1000.0], "not a list of non-negative"),
                             ("string", "1000", "malformed"),
                             ("mismatch", [7, 7], "hold 1000 elements")):
        info = {"w": {"OriginShape": shape, "slices": ["w@@.0"]}}
        p = root / f"split_{name}.pdparams"
        p.write_bytes(pickle.dumps({"w@@.0": part, "UnpackBigParamInfor@@": info}, 2))
        _case(cases, "split-tensor", name, p, "weights", why)
    return cases


# --- architecture from names ---------------------------------------------------------------
def _canonical_npz(path, names_shapes):
    np.savez(path, **{n: np.zeros(s, np.float32) for n, s in names_shapes})


def names(root):
    cases = []
    base = [("conv1.weight", (64, 3, 7, 7)), ("fc.bias", (10,)), ("fc.weight", (10, 256))]
    for idx in (256, 99_999_999_999, int("9" * 60)):
        p = root / f"blockidx_{str(idx)[:12]}.npz"
        _canonical_npz(p, base + [("layer1.0.conv2.weight", (128, 4, 3, 3)),
                                  (f"layer1.{idx}.conv1.weight", (1,))])
        _case(cases, "names-block-index", str(idx)[:12], p, "weights",
              r"at most 8 stages of 256 blocks")
        _case(cases, "names-block-index", f"{str(idx)[:12]}-nonstrict", p, "weights-nonstrict",
              r"at most 8 stages of 256 blocks", cli=False)
    for n in (300, 3000, 30_000):
        p = root / f"blocks_{n}.pdparams"
        tensors = {n_: np.zeros(s_, np.float32) for n_, s_ in base}
        tensors["layer1.0.conv2.weight"] = np.zeros((128, 4, 3, 3), np.float32)
        one = np.zeros(1, np.float32)          # shared: the pickle stays small
        tensors.update((f"layer1.{i}.conv2.weight", one) for i in range(1, n))
        p.write_bytes(pickle.dumps(tensors, 4))
        _case(cases, "names-many-blocks", str(n), p, "weights", r"at most 8 stages of 256 blocks")
    for n in (10_000, 1_000_000, 5_000_000):         # one enormous name, reported briefly
        p = root / f"longname_{n}.pdparams"
        p.write_bytes(pickle.dumps({"a_1" * (n // 3) + ".w_0": np.zeros(1, np.float32)}, 4))
        _case(cases, "names-long", str(n), p, "weights",
              r"unrecognised tensor names \(e\.g\. 'a_1a_1.*\.\.\. \(\d+ characters\)\)")
    for card in (256, 1024, 4096):                  # tiny file, enormous implied network
        p = root / f"wide_{card}.pdparams"
        one = np.zeros(1, np.float32)
        tensors = {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32),
                   "fc.bias": np.zeros(10, np.float32),
                   "layer1.0.conv2.weight": np.zeros((card, 1, 3, 3), np.float32)}
        tensors.update((f"layer{s}.{i}.conv1.weight", one) for s in range(1, 5) for i in range(36))
        p.write_bytes(pickle.dumps(tensors, 4))
        _case(cases, "names-implied-size", str(card), p, "weights-nonstrict",
              r"missing tensors would need .* of seeded values", cli=False)
        _case(cases, "names-implied-size", f"{card}-strict", p, "weights", r"missing",
              multiline=True)
    return cases


# --- tensor records ------------------------------------------------------------------------
def _record(dims, code=5, data=b""):
    desc = b"\x08" + bytes([code]) + b"".join(b"\x10" + _varint(d) for d in dims)
    return b"\x00" * 16 + struct.pack("<I", len(desc)) + desc + data


def _varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


RECORD_DIMS = {"zero-huge": [0, 2 ** 40 + 1, 2 ** 40], "zero-2e62": [0, 2 ** 62, 2 ** 62],
               "1e12": [10 ** 12], "2e62": [2 ** 62], "negative": [-5, 3]}


def records(root):
    cases = []
    for name, dims in RECORD_DIMS.items():
        p = root / f"record_{name}.bin"
        p.write_bytes(_record(dims))
        _case(cases, "record-dims", name, p, "paddle",
              r"invalid dims|truncated|invalid axis|would need")
        t = root / f"record_{name}.tar"
        with tarfile.open(t, "w") as tar:
            data = _record(dims)
            info = tarfile.TarInfo("model/conv1_weights")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        _case(cases, "record-dims-in-tar", name, t, "paddle",
              r"invalid dims|truncated|invalid axis|would need")
    return cases


# --- PIR json ------------------------------------------------------------------------------
def _pir(root, name, text: bytes):
    d = root / f"pir_{name}"
    d.mkdir()
    (d / "m.pdiparams").write_bytes(encode_record(np.zeros((2, 2), np.float32)))
    (d / "m.json").write_bytes(text)
    return d / "m"


def pir_json(root):
    cases = []
    op = b'{"#":"p","A":[0,1,1,"w"],"O":{"TT":{"D":[1,[2,2]]}}}'
    good = b'{"base_code":{"magic":"pir"},"program":{"regions":[{"blocks":[{"ops":[%s]}]}]}}'
    structure = {
        "doc-list": (b"[1,2,3]", r"without the PIR header"),
        "base-list": (b'{"base_code":[1],"program":{}}', r"without the PIR header"),
        "program-string": (b'{"base_code":{"magic":"pir"},"program":"x"}',
                           r"program should be an object or an array"),
        "attrs-int": (good % b'{"#":"p","A":5}', r"parameter op with attributes 5"),
        "attrs-nameless": (good % b'{"#":"p","A":[1,2]}', r"expected \[\.\., \.\., \.\., name\]"),
        "dims-string": (good % b'{"#":"p","A":["w"],"O":{"TT":{"D":[1,"x"]}}}',
                        r"declares dims 'x'"),
        "op-int": (good % b'{"#":7,"A":["w"]}', r"no names|tensors|missing|remain"),
    }
    for name, (text, match) in structure.items():
        _case(cases, "pir-structure", name, _pir(root, name, text), "paddle", match)
    for digits in (50, 500, 5000):
        text = good % (b'{"#":"p","A":["w"],"O":{"TT":{"D":[1,[%s]]}}}' % (b"9" * digits))
        _case(cases, "pir-long-int", str(digits), _pir(root, f"int{digits}", text), "paddle",
              r"an integer of \d+ digits")
    for name, const in (("inf", b"Infinity"), ("nan", b"NaN"), ("ninf", b"-Infinity"),
                        ("1e999", b"1e999")):
        text = good % (b'{"#":"p","A":["w"],"O":{"TT":{"D":[%s,[2,2]]}}}' % const)
        _case(cases, "pir-non-finite", name, _pir(root, name, text), "paddle",
              r"not a JSON number|overflows a double")
    for n in (10_000, 1_000_000, 4_000_000):        # escapes that make a string regex backtrack
        for name, body in (("quote-escapes", b'"\\' * n), ("open-string", b'"' + b"a" * n)):
            text = b'{"base_code":{"magic":"pir"},"program":[' + body
            _case(cases, "pir-hostile-text", f"{name}-{n}", _pir(root, f"{name}{n}", text),
                  "paddle", r"not valid PIR JSON")
    for depth in (101, 1000, 100_000, 1_000_000):
        text = b'{"base_code":{"magic":"pir"},"program":' + b"[" * depth + b"]" * depth + b"}"
        _case(cases, "pir-deep", str(depth), _pir(root, f"deep{depth}", text), "paddle",
              rf"JSON nested {depth + 1} levels deep")
    return cases


# --- tars ----------------------------------------------------------------------------------
CHUNK = 4 << 20


def _bomb_stream(compress, head: bytes, size: int) -> bytes:
    """``head`` then zeros up to ``size`` bytes, as concatenated compressed streams (gzip,
    bzip2 and xz readers all continue into the next stream): one 4 MiB block of zeros is
    compressed once and repeated, so a gigabyte bomb takes milliseconds to write."""
    first = compress(head + bytes(CHUNK - len(head)))
    rest = compress(bytes(CHUNK))
    return first + rest * (size // CHUNK - 1)


def tars(root):
    cases = []
    for mib in (128, 512, 2048):
        for method, comp in (("gz", lambda b: gzip.compress(b, 1)), ("xz", lzma.compress),
                             ("bz2", lambda b: bz2.compress(b, 1))):
            info = tarfile.TarInfo("model/conv1_weights")
            info.size = (mib << 20) - 2048
            p = root / f"bomb_{mib}.tar.{method}"
            p.write_bytes(_bomb_stream(comp, info.tobuf(format=tarfile.GNU_FORMAT), mib << 20))
            _case(cases, "tar-compression-bomb", f"{method}-{mib}MiB", p, "paddle",
                  rf"the {dict(gz='gzip', xz='xz', bz2='bzip2')[method]} stream expands beyond"
                  r"|TensorDesc at byte \d+ has no data_type")   # the member is read as it comes
    for exp in (34, 40, 63, 80):                     # a member declaring 2**exp bytes
        info = tarfile.TarInfo("model/conv1_weights")
        info.size = 2 ** exp
        p = root / f"tarsize_{exp}.tar"
        p.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024))
        _case(cases, "tar-member-size", f"2e{exp}", p, "paddle",
              r"declares \d+ bytes, more than the whole file|would need")
    for exp in (20, 33, 40):                         # GNU sparse member with a huge real size
        info = tarfile.TarInfo("model/conv1_weights")
        info.size = 0
        info.type = tarfile.GNUTYPE_SPARSE
        buf = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
        buf[483:495] = tarfile.itn(2 ** exp, 12, tarfile.GNU_FORMAT)
        buf[148:156] = b" " * 8
        buf[148:156] = b"%06o\0 " % (sum(buf[:512]))
        p = root / f"sparse_{exp}.tar"
        p.write_bytes(bytes(buf) + bytes(1024))
        _case(cases, "tar-sparse", f"2e{exp}", p, "paddle", r"GNU sparse file")
    for name, data in (("garbage", b"\x1f\x8bnot gzip at all" * 10), ("truncated-gz",
                       gzip.compress(b"\x00" * 10000)[:30]), ("empty", b"")):
        p = root / f"badtar_{name}.tar"
        p.write_bytes(data)
        _case(cases, "tar-damaged", name, p, "paddle",
              r"not a readable tar archive|holds no tensor record files")
    return cases


# --- npy / npz -----------------------------------------------------------------------------
def _npy_header(shape, descr="<f4"):
    h = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape))))
    h = h.encode() + b" " * ((64 - (len(h) + 11) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h


def _npz(path, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _deflate_bomb_zip(name: str, size: int) -> bytes:
    """A genuine zip whose one deflated member is an .npy of ``size`` bytes of zeros.

    Raw deflate flushed with Z_FULL_FLUSH is byte-aligned and independent of what came
    before, so one compressed 4 MiB block of zeros is repeated; CRC and sizes are real."""
    head = _npy_header(((size - 128) // 4,))
    size = len(head) + (size - 128) // 4 * 4
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    first = c.compress(head + bytes(CHUNK - len(head))) + c.flush(zlib.Z_FULL_FLUSH)
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    block = c.compress(bytes(CHUNK)) + c.flush(zlib.Z_FULL_FLUSH)
    n_full, tail = divmod(size - CHUNK, CHUNK)
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    last = c.compress(bytes(tail)) + c.flush(zlib.Z_FINISH)
    data = first + block * n_full + last
    crc = zlib.crc32(head + bytes(CHUNK - len(head)))
    zero_block = bytes(CHUNK)
    for _ in range(n_full):
        crc = zlib.crc32(zero_block, crc)
    crc = zlib.crc32(bytes(tail), crc)
    fn = name.encode()
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size,
                        len(fn), 0) + fn
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc,
                          len(data), size, len(fn), 0, 0, 0, 0, 0, 0) + fn
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)
    return local + data + central + end


def arrays(root):
    cases = []
    good = io.BytesIO()
    np.save(good, np.arange(1000, dtype=np.float32))
    good = good.getvalue()
    for name, shape in (("1e12", (10 ** 12,)), ("1e6x1e6", (10 ** 6, 10 ** 6)),
                        ("zero-huge", (0, 2 ** 41, 2 ** 41)), ("short", (1001,))):
        p = root / f"npy_{name}.npy"
        p.write_bytes(_npy_header(shape) + bytes(4000))
        _case(cases, "npy-header-size", name, p, "image",
              r"truncated|invalid axis|would need", cli=False)
        q = root / f"npz_hdr_{name}.npz"
        _npz(q, {"conv1.weight.npy": _npy_header(shape) + bytes(4000)})
        _case(cases, "npz-header-size", name, q, "weights", r"truncated|invalid axis|would need")
    for name, descr in (("object", "|O"), ("unicode", "<U8"), ("record", "[('a', '<f4')]")):
        p = root / f"npy_dtype_{name}.npy"
        p.write_bytes(_npy_header((4,), descr) + bytes(64))
        _case(cases, "npy-dtype", name, p, "image", r"not a plain numeric dtype|unreadable",
              cli=False)
    for mib in (256, 1024, 2047):                    # a deflated member of zeros
        p = root / f"npz_bomb_{mib}.npz"
        p.write_bytes(_deflate_bomb_zip("conv1.weight.npy", mib << 20))
        _case(cases, "npz-deflate-bomb", f"{mib}MiB", p, "weights",
              r"would expand from \d+ to \d+ bytes|would need")
    blob = io.BytesIO()
    np.savez_compressed(blob, w=np.arange(50_000, dtype=np.float32))
    blob = blob.getvalue()
    for cut in (10, 100, len(blob) // 2, len(blob) - 10):
        p = root / f"npz_cut_{cut}.npz"
        p.write_bytes(blob[:cut])
        _case(cases, "npz-truncated", str(cut), p, "weights", r"not a readable \.npz")
    data_at = blob.index(b"PK\x03\x04") + 30 + len("w.npy") + 200
    for i, at in enumerate((data_at, data_at + 1000, data_at + 5000)):
        flipped = bytearray(blob)
        flipped[at] ^= 0xFF
        p = root / f"npz_flip_{i}.npz"
        p.write_bytes(bytes(flipped))
        _case(cases, "npz-bit-flip", str(i), p, "weights",
              r"damaged archive member|truncated|unreadable \.npy header")
    for name, flag, method in (("encrypted", 0x1, 8), ("bzip2", 0, 12), ("lzma", 0, 14),
                               ("method99", 0, 99)):
        raw = bytearray(blob)
        for sig in (b"PK\x03\x04", b"PK\x01\x02"):
            at = raw.index(sig)
            off = 6 if sig == b"PK\x03\x04" else 8
            raw[at + off:at + off + 2] = struct.pack("<H", struct.unpack(
                "<H", raw[at + off:at + off + 2])[0] | flag)
            raw[at + off + 2:at + off + 4] = struct.pack("<H", method)
        p = root / f"npz_{name}.npz"
        p.write_bytes(bytes(raw))
        _case(cases, "npz-member-kind", name, p, "weights",
              r"encrypted|uses compression method")
    raw = bytearray(blob)                            # "needs zip version 9.9 to extract"
    at = raw.index(b"PK\x01\x02")
    raw[at + 6:at + 8] = struct.pack("<H", 99)
    p = root / "npz_version.npz"
    p.write_bytes(bytes(raw))
    _case(cases, "npz-member-kind", "version", p, "weights", r"zip file version 9\.9")
    for name, members in (("text", {"notes.txt": b"hello"}), ("pickle", {"w.pkl": b"\x80\x04N."}),
                          ("dir", {"w/": b""})):
        p = root / f"npz_member_{name}.npz"
        _npz(p, members)
        _case(cases, "npz-member-kind", name, p, "weights", r"is not an \.npy array")
    p = root / "renamed.npz"
    p.write_bytes(good)
    _case(cases, "npz-not-zip", "npy-renamed", p, "weights", r"single \.npy array, not an \.npz")
    p = root / "empty.npz"
    p.write_bytes(b"")
    _case(cases, "npz-not-zip", "empty", p, "weights", r"the file is empty")
    p = root / "text.npz"
    p.write_bytes(b"hello world, not a zip at all")
    _case(cases, "npz-not-zip", "text", p, "weights", r"not a readable \.npz")
    return cases


# --- images --------------------------------------------------------------------------------
def _png_header(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _png_write(path, height, width):
    """A real (decodable) black RGB PNG."""
    rows = (b"\x00" + bytes(3 * width)) * height
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def images(root):
    cases = []
    for w in (20_000, 100_000, 1_000_000):           # a 1-pixel-high strip: resize explodes
        p = root / f"strip_{w}.npy"
        np.save(p, np.zeros((1, w, 3), np.uint8))
        _case(cases, "image-resize-size", str(w), p, "image", r"pixels accepted", cli=False)
        p = root / f"strip_{w}.png"
        _png_write(p, 1, w)
        _case(cases, "image-resize-size", f"{w}-png", p, "image",
              r"pixels accepted" if HAVE_PIL else NO_PIL, cli=False)
    for w, h in ((30_000, 30_000), (100_000, 1000), (65_535, 65_535), (9000, 9000)):
        p = root / f"decl_{w}x{h}.png"
        p.write_bytes(_png_header(w, h))
        _case(cases, "image-declared-size", f"{w}x{h}", p, "image",
              r"pixels accepted|too large to decode" if HAVE_PIL else NO_PIL, cli=False)
    for name, data in (("garbage", b"\x89PNG\r\n\x1a\ngarbage"), ("empty", b""),
                       ("jpeg-cut", b"\xff\xd8\xff\xe0\x00\x10JFIF")):
        p = root / f"bad_{name}.png"
        p.write_bytes(data)
        _case(cases, "image-damaged", name, p, "image",
              r"cannot decode" if HAVE_PIL else NO_PIL, cli=False)
    return cases


# --- special files and layouts ---------------------------------------------------------------
def special(root):
    cases = []
    for name in ("w.pdparams", "w.npz", "w"):
        p = root / f"fifo_{name}"
        os.mkfifo(p)
        _case(cases, "special-fifo", name, p, "weights", r"a FIFO \(named pipe\), expected a "
              "regular file")
    p = root / "fifo_img.npy"
    os.mkfifo(p)
    _case(cases, "special-fifo", "image", p, "image", r"a FIFO", cli=False)
    # outside pytest's tmp_path, whose recursive clean-up cannot remove 1,200 levels;
    # removed by remove_deep_dirs()
    deep_root = Path(tempfile.mkdtemp(prefix="numpy_resnext_deep_"))
    (root / "deep_dirs").write_text(str(deep_root))
    for depth in (40, 300, 1200):
        top = deep_root / f"deep_{depth}"
        d = top
        os.mkdir(d)
        for _ in range(depth):
            d = d / "d"
            os.mkdir(d)
        _case(cases, "special-deep-dir", str(depth), top, "weights", r"nested more than 32 levels")
    loop = root / "loop.pdparams"
    os.symlink(loop, loop)
    _case(cases, "special-symlink", "loop-self", loop, "weights", r"no such file")
    a, b = root / "loop_a.npz", root / "loop_b.npz"
    os.symlink(b, a)
    os.symlink(a, b)
    _case(cases, "special-symlink", "loop-pair", a, "weights", r"Too many levels of symbolic links")
    dangling = root / "dangling.pdparams"
    os.symlink(root / "nowhere", dangling)
    _case(cases, "special-symlink", "dangling", dangling, "weights", r"does not exist|no such")
    to_fifo = root / "to_fifo.pdparams"
    os.symlink(root / "fifo_w.pdparams", to_fifo)
    _case(cases, "special-symlink", "to-fifo", to_fifo, "weights", r"a FIFO")
    d = root / "dir_with_fifo"
    d.mkdir()
    os.mkfifo(d / "conv1_weights")
    _case(cases, "special-fifo", "inside-dir", d, "weights",
          r"no tensor record files found.*not a regular file")
    return cases


def remove_deep_dirs(root):
    """Remove what special() made outside ``root``, bottom-up, without recursion."""
    note = root / "deep_dirs"
    if not note.exists():
        return
    deep_root = note.read_text()
    for top in sorted(os.listdir(deep_root)):
        chain = [os.path.join(deep_root, top)]
        while os.path.isdir(os.path.join(chain[-1], "d")):
            chain.append(os.path.join(chain[-1], "d"))
        for d in reversed(chain):
            os.rmdir(d)
    os.rmdir(deep_root)


# --- output ----------------------------------------------------------------------------------
def outputs(root):
    cases = []
    blocker = root / "a_file"
    blocker.write_bytes(b"x")
    for name, target, match in (
            ("name-max-300", root / ("x" * 300 + ".npy"), r"file name too long"),
            ("name-max-5000", root / ("y" * 5000 + ".npy"), r"file name too long"),
            ("parent-is-file", blocker / "out.npy", r"does not exist|not a directory"),
            ("proc", "/proc/self/out.npy", r"cannot write|does not exist"),
            ("sys", "/sys/out.npy", r"cannot write|does not exist")):
        _case(cases, "output", name, target, "save", match, cli=False)
    return cases


def corruption(root):
    """A small valid weight file, cut short and bit-flipped at evenly spread positions:
    each result must load or fail cleanly (a flip inside tensor data can still load)."""
    from numpy_resnext.archs import ArchConfig
    from numpy_resnext.params import init_params
    cfg = ArchConfig(name="tiny", depths=(1, 1), cardinality=2, base_width=4, num_classes=3)
    tensors = dict(init_params(cfg))
    sources = {}
    for proto in (2, 4):
        sources[f"p{proto}"] = (pickle.dumps(tensors, proto), ".pdparams")
    buf = io.BytesIO()
    np.savez_compressed(buf, **tensors)
    sources["npz"] = (buf.getvalue(), ".npz")
    cases = []
    for label, (blob, ext) in sources.items():
        for i in range(12):
            cut = len(blob) * i // 12
            p = root / f"cut_{label}_{i}{ext}"
            p.write_bytes(blob[:cut])
            _case(cases, "corrupt-truncated", f"{label}-{i}", p, "weights", r".", may_load=False)
            at = (len(blob) - 1) * i // 11
            flipped = bytearray(blob)
            flipped[at] ^= 0x5A
            p = root / f"flip_{label}_{i}{ext}"
            p.write_bytes(bytes(flipped))
            _case(cases, "corrupt-bit-flip", f"{label}-{i}", p, "weights", r".", may_load=True)
    for mode in ("", "gz", "xz"):                    # record tars, flipped and cut
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=f"w:{mode}") as tar:
            for name, array in tensors.items():
                data = encode_record(array)
                info = tarfile.TarInfo(f"tiny/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        blob = buf.getvalue()
        for i in range(8):
            flipped = bytearray(blob)
            for k in range(3):
                flipped[(len(blob) - 1) * (i * 3 + k + 1) // 25] ^= 0xA5
            p = root / f"flip_tar_{mode or 'plain'}_{i}.tar{'.' + mode if mode else ''}"
            p.write_bytes(bytes(flipped))
            _case(cases, "corrupt-tar", f"{mode or 'plain'}-flip-{i}", p, "paddle", r".",
                  may_load=not mode)           # compressed: the checksum must catch it
            p = root / f"cut_tar_{mode or 'plain'}_{i}.tar{'.' + mode if mode else ''}"
            p.write_bytes(blob[:len(blob) * i // 8])
            _case(cases, "corrupt-tar", f"{mode or 'plain'}-cut-{i}", p, "paddle", r".",
                  may_load=True)
    return cases


GENERATORS = [corruption, pickles, code_execution, split_tensors, names, records, pir_json, tars, arrays,
              images, special, outputs]
