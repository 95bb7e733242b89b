"""Attack classes where each item is within its own bound but the file multiplies them, and
where the work grows faster than the input: many deflated members, zip central records that
share one local header, torch storages viewed many times, pickles of millions of objects, a
compressed tar of one huge record, valid inputs that ask for a huge computation, dict keys
solved to share one hash, symlinked shards, and name maps of many pattern keys. Same
conventions as tests/_attacks.py (the worker's templates: {path}, {w}, {x}, {dout}, {dump},
{work}).
"""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np

from _attacks import CHUNK, _binunicode, _case, _npy_header, _proto4, _varint
from _attacks_io import CMP_CAND, CMP_REF, _have, _legacy, _long, _st

CONVERT = ["convert", "--weights", "{path}", "--output", "{work}/o.npz"]
FORWARD_W = ["forward", "--weights", "{path}", "--input", "{x}", "--output", "{work}/o.npy"]
MASK = (1 << 64) - 1
P61 = (1 << 61) - 1


# --- zip archives built by hand ------------------------------------------------------------
def _zeros_member(size: int):
    """(crc, raw deflate bytes, size) of ``size`` zero bytes after an .npy header, made by
    repeating one compressed 4 MiB block (Z_FULL_FLUSH makes the blocks independent)."""
    head = _npy_header(((size - 128) // 4,))
    size = len(head) + (size - 128) // 4 * 4
    body = size - len(head)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    n_full, tail = divmod(body, CHUNK)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(CHUNK)) + c.flush(zlib.Z_FULL_FLUSH)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = c.compress(bytes(tail)) + c.flush(zlib.Z_FINISH)
    crc = zlib.crc32(head)
    zero = bytes(CHUNK)
    for _ in range(n_full):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(bytes(tail), crc)
    return crc, first + block * n_full + last, size


def _zip(locals_, centrals) -> bytes:
    """A zip of ``locals_`` [(name, method, crc, data, size)] written in order, with the
    central records ``centrals`` [(name, index of the local member it points at)]."""
    out, offsets = bytearray(), []
    for name, method, crc, data, size in locals_:
        fn = name.encode("utf-8", "surrogateescape")
        offsets.append(len(out))
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0x800, method, 0, 0, crc,
                           len(data), size, len(fn), 0) + fn + data
    start, central = len(out), bytearray()
    for name, i in centrals:
        fn = name.encode("utf-8", "surrogateescape")
        _, method, crc, data, size = locals_[i]
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0x800, method, 0,
                               0, crc, len(data), size, len(fn), 0, 0, 0, 0, 0,
                               offsets[i]) + fn
    out += central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(centrals),
                                 len(centrals), len(central), start, 0)
    return bytes(out)


def _stored_npy(n_floats):
    data = _npy_header((n_floats,)) + bytes(4 * n_floats)
    return data, zlib.crc32(data)


NPZ_READERS = [FORWARD_W, CONVERT, ["forward", "--weights", "{w}", "--input", "{path}",
                                    "--output", "{work}/o.npy"], CMP_REF, CMP_CAND]


def npz_many_members(root):
    """Deflated members of zeros, each within its own 64x / 64 MiB allowance."""
    cases = []
    for count, mib in ((24, 64), (100, 60), (2000, 1)):
        crc, data, size = _zeros_member((mib << 20) - 4096)
        p = root / f"many_{count}x{mib}.npz"
        p.write_bytes(_zip([(f"m{i}.npy", 8, crc, data, size) for i in range(count)],
                           [(f"m{i}.npy", i) for i in range(count)]))
        for api in ("weights", "candidate", "reference", "input"):
            _case(cases, "npz-many-members", f"{count}x{mib}MiB-{api}", p, api,
                  r"allowed for the whole file|would need|at most|found an \.npz archive",
                  cli=NPZ_READERS if api == "weights" else False)
    return cases


def zip_shared_header(root):
    """Central records that all point at one local header (npz weights and candidates, torch
    storages), and central names that differ from the local ones."""
    cases = []
    for count, mib in ((10, 4), (300, 4), (3000, 1)):
        data, crc = _stored_npy((mib << 20) // 4)
        p = root / f"shared_{count}x{mib}.npz"
        p.write_bytes(_zip([("m0.npy", 0, crc, data, len(data))],
                           [(f"m{i}.npy", 0) for i in range(count)]))
        for api in ("weights", "candidate", "input"):
            _case(cases, "zip-shared-header", f"npz-{count}x{mib}MiB-{api}", p, api,
                  r"local header|found an \.npz archive",
                  cli=NPZ_READERS if api == "weights" else False)
    data, crc = _stored_npy(1000)
    p = root / "renamed_local.npz"
    p.write_bytes(_zip([("a.npy", 0, crc, data, len(data))], [("b.npy", 0)]))
    _case(cases, "zip-shared-header", "name-differs", p, "weights", r"local header",
          cli=NPZ_READERS)
    for count, mib in ((50, 8), (200, 8), (1000, 1)):
        numel = (mib << 20) // 4
        pkl = _state_pickle([(f"w{i}", str(i), numel, (numel,), (1,), 0) for i in range(count)])
        members = [("archive/data.pkl", 0, zlib.crc32(pkl), pkl, len(pkl)),
                   ("archive/data/0", 0, zlib.crc32(bytes(4 * numel)), bytes(4 * numel),
                    4 * numel)]
        centrals = [("archive/data.pkl", 0)] + [(f"archive/data/{i}", 1) for i in range(count)]
        p = root / f"shared_{count}x{mib}.pth"
        p.write_bytes(_zip(members, centrals))
        _case(cases, "zip-shared-header", f"torch-{count}x{mib}MiB", p, "torch", r"local header")
    return cases


# --- torch ----------------------------------------------------------------------------------
def _tuple(values) -> bytes:
    return b"(" + b"".join(_long(v) for v in values) + b"t"


def _state_pickle(tensors, legacy=False) -> bytes:
    """A state dict {name: tensor} as torch.save pickles it (protocol 2, BINPERSID), for
    tensors [(name, storage key, storage numel, size, stride, offset)]; ``legacy``: the
    persistent ids of the legacy format (a sixth field, None)."""
    body = b""
    for name, key, numel, size, stride, offset in tensors:
        body += (_binunicode(name) + b"ctorch._utils\n_rebuild_tensor_v2\n("
                 + b"(" + _binunicode("storage") + b"ctorch\nFloatStorage\n" + _binunicode(key)
                 + _binunicode("cpu") + _long(numel) + (b"N" if legacy else b"") + b"tQ"
                 + _long(offset) + _tuple(size) + _tuple(stride) + b"\x89"
                 + b"ccollections\nOrderedDict\n)RtR")
    return b"\x80\x02}(" + body + b"u."


def _torch_zip_raw(path, pkl: bytes, storages: dict):
    members = [("archive/data.pkl", 0, zlib.crc32(pkl), pkl, len(pkl))]
    members += [(f"archive/data/{k}", 0, zlib.crc32(v), v, len(v)) for k, v in storages.items()]
    members += [("archive/byteorder", 0, zlib.crc32(b"little"), b"little", 6)]
    path.write_bytes(_zip(members, [(m[0], i) for i, m in enumerate(members)]))


def torch_storage_views(root):
    """One storage viewed by many tensors: reading must share it, not copy it per view."""
    cases = []
    for count, mib in ((50, 8), (200, 8), (2000, 2)):
        numel = (mib << 20) // 4
        pkl = _state_pickle([(f"w{i}", "0", numel, (numel,), (1,), 0) for i in range(count)])
        p = root / f"views_{count}x{mib}.pth"
        _torch_zip_raw(p, pkl, {"0": bytes(4 * numel)})
        _case(cases, "torch-storage-views", f"zip-{count}x{mib}MiB", p, "torch",
              r"unrecognised|no tensors|naming scheme", may_load=True)
        q = root / f"views_legacy_{count}x{mib}.pth"
        _legacy(q, _state_pickle([(f"w{i}", "0", numel, (numel,), (1,), 0) for i in range(count)],
                                 legacy=True), keys=["0"])
        with open(q, "ab") as f:
            f.write(struct.pack("<q", numel) + bytes(4 * numel))
        _case(cases, "torch-storage-views", f"legacy-{count}x{mib}MiB", q, "torch",
              r"unrecognised|no tensors|naming scheme", may_load=True)
    return cases


# --- pickles of millions of objects -----------------------------------------------------------
def pickle_many_objects(root):
    cases = []
    for label, n, body in (("lists-1M", 1_000_000, lambda n: b"](" + b"]" * n + b"e"),
                           ("lists-3M", 3_000_000, lambda n: b"](" + b"]" * n + b"e"),
                           ("lists-9.5M", 9_500_000, lambda n: b"](" + b"]" * n + b"e"),
                           ("dicts-4M", 4_000_000, lambda n: b"]" + b"}a" * n)):
        p = root / f"objects_{label}.pdparams"
        p.write_bytes(b"\x80\x04}" + _binunicode("w") + body(n) + b"s.")
        _case(cases, "pickle-many-objects", f"pdparams-{label}", p, "weights",
              r"more than [\d,]+ objects")
    for label, n in (("3M", 3_000_000), ("9.5M", 9_500_000)):
        pkl = b"\x80\x02}" + _binunicode("w") + b"](" + b"]" * n + b"es."
        p = root / f"objects_{label}.pth"
        _torch_zip_raw(p, pkl, {})
        _case(cases, "pickle-many-objects", f"torch-zip-{label}", p, "torch",
              r"more than [\d,]+ objects")
    return cases


# --- a compressed tar of one huge record ------------------------------------------------------
def _gzip_of_chunks(head: bytes, block: bytes, n_blocks: int, tail: bytes) -> bytes:
    """gzip of head + block * n_blocks + tail, compressing ``block`` once."""
    def deflate(data, final=False):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(n_blocks):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + len(block) * n_blocks + len(tail)
    raw = deflate(head) + deflate(block) * n_blocks + deflate(tail, final=True)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + raw
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


def tar_big_record(root):
    """A .tar.gz of one tensor record of up to 580 MiB at about 61:1 (9.9 MB; within 64x)."""
    import tarfile
    cases = []
    rng = np.random.default_rng(0)
    block = bytearray(CHUNK)
    for at in range(0, CHUNK, 4096):              # 54 random bytes per page: about 61:1
        block[at:at + 54] = rng.bytes(54)
    for mib in (100, 300, 580):
        n_blocks = mib * (1 << 20) // CHUNK
        numel = n_blocks * CHUNK // 4
        desc = b"\x08\x05\x10" + _varint(numel)
        record = b"\x00" * 16 + struct.pack("<I", len(desc)) + desc
        info = tarfile.TarInfo("model/conv1_weights")
        info.size = len(record) + numel * 4
        head = info.tobuf(format=tarfile.GNU_FORMAT) + record
        pad = (-info.size) % 512
        p = root / f"big_record_{mib}.tar.gz"
        p.write_bytes(_gzip_of_chunks(head, bytes(block), n_blocks, bytes(pad + 1024)))
        _case(cases, "tar-big-record", f"{mib}MiB", p, "paddle",
              r"unrecognised|naming scheme|no tensors|shape|allowed|no bottleneck blocks", may_load=True)
    return cases


# --- valid inputs that ask for a huge computation ----------------------------------------
def compute_size(root):
    cases = []
    for label, shape in (("1x873813", (1, 3, 1, 873813)), ("16x224", (16, 3, 224, 224)),
                         ("1x2048", (1, 3, 2048, 2048))):
        p = root / f"big_input_{label}.npy"
        np.save(p, np.zeros(shape, np.float32))
        dout = root / f"big_dout_{label}.npy"
        np.save(dout, np.ones((shape[0], 3), np.float32))
        cli = [["golden", "ResNeXt50_32x4d", "--init", "identity-bn", "--input", "{path}",
                "--output", "{work}/g.npz"],
               ["golden", "--weights", "{w}", "--input", "{path}", "--output", "{work}/g.npz"],
               ["grad", "--weights", "{w}", "--input", "{path}", "--dout", str(dout),
                "--output", "{work}/g.npz"],
               ["explain", "ResNeXt50_32x4d", "--init", "identity-bn", "--block", "layer1.0",
                "--input", "{path}"]]
        _case(cases, "compute-size", label, p, "compute", r"memory", cli=cli, completes=True,
              progress=True)
    for size in ("5000", "20000", "100000"):
        cli = [["audit", "--mutants", "--size", size, size, "--mutant", "bn-no-eps"],
               ["demo", "--size", size, "--repeat", "1"]]
        if _have("onnx"):
            cli += [["export", "--weights", "{w}", "--size", size, size, "--onnx",
                     "{work}/m.onnx"],
                    ["conformance", "--weights", "{w}", "--size", size, size]]
        _case(cases, "compute-size", f"size-{size}", root / f"size_{size}", "none", r"memory",
              cli=cli, completes=True, progress=True, named="memory")
    _case(cases, "compute-size", "batch-100000", root / "batch", "none", r"memory",
          cli=[["demo", "--batch", "100000", "--repeat", "1"]], completes=True, progress=True,
          named="memory")
    return cases


# --- dict keys solved to share one hash (no integer of 2**61 or more) -------------------------
P1, P2, P5 = 11400714785074694791, 14029467366897019727, 2870177450012600261


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & MASK


def _small(lane):
    """The int whose hash is ``lane`` (as an unsigned 64-bit value), if one below 2**61."""
    if lane < P61:
        return lane
    if lane > MASK - P61 + 1 and lane != MASK:
        return lane - (1 << 64)
    return None


def colliding_tuples(n):
    """n 2-tuples of ints below 2**61 whose hash (CPython's tuple hash) is one value."""
    def acc1(a):
        return (_rotl((P5 + (hash(a) & MASK) * P2) & MASK, 31) * P1) & MASK
    inv, target, out, a = pow(P2, -1, 1 << 64), acc1(0), [(0, 0)], 0
    while len(out) < n:
        a += 1
        b = _small(((target - acc1(a)) * inv) & MASK)
        if b is not None:
            out.append((a, b))
    return out


def colliding_pairs_frozen(n):
    """n 2-element sets of ints below 2**61 whose frozenset hash is one value."""
    c1, c2 = 89869747, 3644798167
    inv = pow(c2, -1, 1 << 64)

    def shuffle(h):
        return (((h ^ c1) ^ (h << 16)) * c2) & MASK

    def unshuffle(y):
        z = ((y * inv) & MASK) ^ c1
        return (z ^ (z << 16) ^ (z << 32) ^ (z << 48)) & MASK
    key, out, a = shuffle(0) ^ shuffle(1), [(0, 1)], 1
    while len(out) < n:
        a += 1
        b = _small(unshuffle(key ^ shuffle(a & MASK)))
        if b is not None and b not in (a, -1):
            out.append((a, b))
    return out


def _int(v):
    return b"J" + struct.pack("<i", v) if -2 ** 31 <= v < 2 ** 31 else _long(v)


def colliding_keys(root):
    cases = []
    match = r"key|set item|refused"
    for n in (1000, 10_000, 60_000):
        tuples = colliding_tuples(n)
        pairs = b"".join(_int(a) + _int(b) + b"\x86" for a, b in tuples)          # TUPLE2
        items = b"".join(_int(a) + _int(b) + b"\x86K\x00" for a, b in tuples)
        frozen = b"".join(b"(" + _int(a) + _int(b) + b"\x91K\x00"              # FROZENSET
                          for a, b in colliding_pairs_frozen(n))
        bodies = {
            "tuple-keys": b"}(" + items + b"u",
            "frozenset-keys": b"}(" + frozen + b"u",
            "set-items": b"\x8f(" + pairs + b"\x90",                          # ADDITEMS
            "frozenset-call": b"cbuiltins\nfrozenset\n(](" + pairs + b"etR",
            "dict-call": b"cbuiltins\ndict\n(](" + b"".join(
                _int(a) + _int(b) + b"\x86K\x00\x86" for a, b in tuples) + b"etR",
        }
        for label, body in bodies.items():
            p = root / f"collide_{label}_{n}.pdparams"
            p.write_bytes(_proto4(b"}" + _binunicode("w") + body + b"s"))
            _case(cases, "colliding-keys", f"pdparams-{label}-{n}", p, "weights", match)
        proto2 = b"\x80\x02}(" + items + b"u."
        q = root / f"collide_{n}.pth"
        _torch_zip_raw(q, proto2, {})
        _case(cases, "colliding-keys", f"torch-zip-{n}", q, "torch", match)
        q = root / f"collide_legacy_{n}.pth"
        _legacy(q, proto2)
        _case(cases, "colliding-keys", f"torch-legacy-{n}", q, "torch", match)
        d = root / f"collide_info_{n}"
        d.mkdir()
        (d / "m.pdiparams").write_bytes(_record_of((2, 2)))
        (d / "m.json").write_bytes(b'{"base_code":{"magic":"pir"},"program":{"regions":[{"blocks"'
                                   b':[{"ops":[{"#":"p","A":[0,1,1,"w"],"O":{"TT":{"D":[1,[2,2]]}}}'
                                   b']}]}]}}')
        (d / "m.pdiparams.info").write_bytes(_proto4(b"}(" + items + b"u"))
        _case(cases, "colliding-keys", f"pdiparams-info-{n}", d / "m", "paddle", match,
              named="m.pdiparams.info")
    return cases


def _record_of(shape):
    from numpy_resnext.io.paddle.records import encode_record
    return encode_record(np.zeros(shape, np.float32))


# --- symlinked shards of one file ----------------------------------------------------------
def _big_header_safetensors(path, entries):
    header = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
              for i in range(entries)}
    text = json.dumps(header, separators=(",", ":")).encode()
    _st(path, text + b" " * (-len(text) % 8), bytes(4 * entries))


def shard_symlinks(root):
    cases = []
    for names, entries in ((100, 15_000), (300, 150_000), (2000, 50_000)):
        d = root / f"shards_{names}_{entries}"
        (d / "blobs").mkdir(parents=True)
        snap = d / "snapshots" / "0123abcd"
        snap.mkdir(parents=True)
        _big_header_safetensors(d / "blobs" / "f00d", entries)
        wmap = {}
        for i in range(names):
            shard = f"model-{i:05d}-of-{names:05d}.safetensors"
            os.symlink("../../blobs/f00d", snap / shard)
            wmap[f"t{i}"] = shard
        (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wmap}))
        _case(cases, "shard-symlinks", f"index-{names}x{entries}",
              snap / "model.safetensors.index.json", "weights",
              r"unrecognised|naming scheme|no tensors")
        _case(cases, "shard-symlinks", f"hub-dir-{names}x{entries}", snap, "weights",
              r"unrecognised|naming scheme|no tensors")
    return cases


# --- name maps of many pattern keys ----------------------------------------------------------
# each key form with candidate names that contain its literal parts
KEY_FORMS = {"*q{i}*": "zq{j}z", "a*{i}*b": "ax{j}xb", "*.{i}.*": "x.{j}.y",
             "*qqqq*{i}*": "zqqqqz{j}z"}


def map_many_patterns(root):
    cases = []
    for keys, names, form in ((2000, 1000, "*q{i}*"), (20_000, 1000, "*q{i}*"),
                              (50_000, 2000, "*q{i}*"), (20_000, 1000, "a*{i}*b"),
                              (20_000, 1000, "*.{i}.*"), (20_000, 1000, "*qqqq*{i}*")):
        label = f"{keys}x{names}-{form.replace('*', 'S').replace('.', 'D').replace('{i}', 'i')}"
        p = root / f"map_{label}.json"
        p.write_text(json.dumps({form.format(i=i): f"x{i}" for i in range(keys)}))
        cand = root / f"map_{label}.json.cand.npz"
        one = np.zeros(1, np.float32)
        np.savez(cand, **{KEY_FORMS[form].format(j=j): one for j in range(names)})
        _case(cases, "map-many-patterns", label, p, "map-cand", r"pattern keys|no tensor|both map to",
              cli=[["compare", "{dump}", str(cand), "--map", "{path}"]], completes=True)
    return cases


# --- a data set's tensors (golden-set --images X.npz) ---------------------------------------
GOLDEN_SET = ["golden-set", "--weights", "{w}", "--images", "{path}", "--output", "{work}/run.zarr",
              "--workers", "0"]


def _zeros_tensor(shape, deflate=True):
    """(name-less member: crc, data, size) of a float32 .npy of zeros of ``shape``."""
    head = _npy_header(shape)
    body = 4 * int(np.prod(shape))
    crc = zlib.crc32(head)
    if not deflate:
        data = head + bytes(body)
        return zlib.crc32(data), data, len(data)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [c.compress(head)]
    for start in range(0, body, CHUNK):
        block = bytes(min(CHUNK, body - start))
        crc = zlib.crc32(block, crc)
        parts.append(c.compress(block))
    parts.append(c.flush(zlib.Z_FINISH))
    return crc, b"".join(parts), len(head) + body


def dataset_npz(root):
    """An .npz of preprocessed tensors given to golden-set: read from the members' headers
    when listed and one member at a time when computed; a member that would expand past its
    bound, central records sharing one local header, a header declaring more than the member
    holds, and (completing) many members of any size the bounds allow."""
    cli = [GOLDEN_SET] if _have("zarr") and _have("threadpoolctl") else False
    cases = []
    for side in (4096, 6000):                     # float32 (3, side, side) of zeros: 192 and 412 MiB
        crc, data, size = _zeros_tensor((3, side, side))
        p = root / f"images_bomb_{side}.npz"
        p.write_bytes(_zip([("img0.npy", 8, crc, data, size)], [("img0.npy", 0)]))
        _case(cases, "dataset-npz", f"bomb-{side}", p, "images", r"decompression bomb", cli=cli)
    for count in (10, 3000):
        crc, data, size = _zeros_tensor((3, 256, 256), deflate=False)
        p = root / f"images_shared_{count}.npz"
        p.write_bytes(_zip([("img0.npy", 0, crc, data, size)],
                           [(f"img{i}.npy", 0) for i in range(count)]))
        _case(cases, "dataset-npz", f"shared-header-{count}", p, "images", r"local header", cli=cli)
    for shape in ((3, 1000, 1000), (3, 2 ** 20, 2 ** 20)):
        data = _npy_header(shape) + bytes(400)
        p = root / f"images_declares_{shape[1]}.npz"
        p.write_bytes(_zip([("img0.npy", 0, zlib.crc32(data), data, len(data))], [("img0.npy", 0)]))
        _case(cases, "dataset-npz", f"declares-{shape[1]}", p, "images",
              r"header declares|would need .* the reading limit", cli=cli)
    crc, data, size = _zeros_tensor((3, 4, 4), deflate=False)      # many small, valid members
    for count in (2000, 8000):
        p = root / f"images_many_{count}.npz"
        p.write_bytes(_zip([(f"img{i}.npy", 0, crc, data, size) for i in range(count)],
                           [(f"img{i}.npy", i) for i in range(count)]))
        _case(cases, "dataset-npz", f"many-{count}", p, "images", r".", cli=False, completes=True)
    crc, data, size = _zeros_tensor((3, 2560, 2048))              # 60 MiB each, 24 of them
    p = root / "images_large_24.npz"
    p.write_bytes(_zip([(f"img{i}.npy", 8, crc, data, size) for i in range(24)],
                       [(f"img{i}.npy", i) for i in range(24)]))
    _case(cases, "dataset-npz", "large-24x60MiB", p, "images", r".", cli=False, completes=True)
    return cases


GENERATORS = [npz_many_members, zip_shared_header, torch_storage_views, pickle_many_objects,
              tar_big_record, compute_size, colliding_keys, shard_symlinks, map_many_patterns,
              dataset_npz]
