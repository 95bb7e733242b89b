"""One reading budget per load, and what multiplies per-item bounds: deflated members that
expand within their own allowance, zip entries that share a local header, torch storages
viewed many times, pickles of many objects or of keys solved to share a hash, shards that
are one file under many names, name maps of many pattern keys. The attack suite runs the
same classes at full size through the command line; these tests pin each rule on small
files."""

import io
import json
import os
import pickle
import random
import sys
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _attacks_budget as A  # noqa: E402

from numpy_resnext import bounded as B
from numpy_resnext.errors import FormatError, InputError
from numpy_resnext.golden.names import NameMap, parse_map
from numpy_resnext.io import hub, read_paddle, read_weights, safetensors
from numpy_resnext.io.paddle.records import encode_record
from numpy_resnext.io.unpickle import loads


# --- one allowance per file ----------------------------------------------------------------
def test_deflated_members_are_bounded_together_before_any_is_read(tmp_path):
    crc, data, size = A._zeros_member(1 << 20)                   # 1 MiB each, ~1 kB deflated
    p = tmp_path / "many.npz"
    p.write_bytes(A._zip([(f"m{i}.npy", 8, crc, data, size) for i in range(40)],
                         [(f"m{i}.npy", i) for i in range(40)]))
    with B.limits(min_expand=32 << 20):                           # 40 x 1 MiB > 32 MiB
        with pytest.raises(FormatError, match=r"many\.npz: its 40 members together would bring"
                                              r".*allowed for the whole file"):
            B.read_npz(p)
        assert len(B.npz_names(p)) == 40                          # listing reads no member
    assert len(B.read_npz(p)) == 40                               # within the default 64 MiB


def test_the_allowance_counts_a_file_once_whatever_its_names(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(bytes(1000))
    os.symlink(a, tmp_path / "b.bin")
    load = B.budget.Load()
    for name in ("a.bin", "b.bin", "a.bin"):
        B.budget.register_file(os.stat(tmp_path / name))          # outside a load: ignored
    token = B.budget._current.set(load)
    try:
        for name in ("a.bin", "b.bin"):
            B.open_regular(tmp_path / name)[0].close()
    finally:
        B.budget._current.reset(token)
    assert load.input_bytes == 1000
    with B.limits(min_expand=0, max_ratio=3):
        assert load.allowance == 3000
        load.charge(2500, "x", "a.bin")
        with pytest.raises(FormatError, match="allowed for the whole file"):
            load.charge(501, "y", "a.bin")


# --- zip directories -----------------------------------------------------------------------
def test_directory_entries_may_not_share_a_local_header(tmp_path):
    data, crc = A._stored_npy(100)
    p = tmp_path / "shared.npz"
    p.write_bytes(A._zip([("m0.npy", 0, crc, data, len(data))], [("m0.npy", 0), ("m1.npy", 0)]))
    with pytest.raises(FormatError, match=r"member 'm1\.npy': the local header at byte 0 "
                                          r"describes 'm0\.npy'"):
        B.read_npz(p)
    q = tmp_path / "overlap.npz"                                  # same name, same bytes
    body = A._zip([("m0.npy", 0, crc, data, len(data))], [("m0.npy", 0)])
    zf = zipfile.ZipFile(io.BytesIO(body))
    assert zf.namelist() == ["m0.npy"]
    q.write_bytes(A._zip([("m0.npy", 0, crc, data, len(data)), ("m0.npy", 0, crc, data, len(data))],
                         [("m0.npy", 0), ("m0.npy", 0)]))
    with pytest.raises(FormatError, match=r"share the same local header|named twice"):
        B.read_npz(q)


def test_torch_storages_of_a_zip_are_checked_the_same_way(tmp_path):
    numel = 1000
    pkl = A._state_pickle([(f"w{i}", str(i), numel, (numel,), (1,), 0) for i in range(3)])
    members = [("archive/data.pkl", 0, zlib.crc32(pkl), pkl, len(pkl)),
               ("archive/data/0", 0, 0, bytes(4 * numel), 4 * numel)]
    p = tmp_path / "shared.pth"
    p.write_bytes(A._zip(members, [("archive/data.pkl", 0), ("archive/data/0", 1),
                                   ("archive/data/1", 1), ("archive/data/2", 1)]))
    with pytest.raises(FormatError, match=r"local header at byte \d+ describes 'archive/data/0'"):
        read_weights(p)


def test_views_of_one_torch_storage_share_it(tmp_path):
    numel = 1 << 18                                               # 1 MiB
    pkl = A._state_pickle([(f"w{i}", "0", numel, (numel // 4, 4), (4, 1), 0) for i in range(50)]
                          + [("half", "0", numel, (numel // 2,), (1,), numel // 2)])
    p = tmp_path / "views.pth"
    A._torch_zip_raw(p, pkl, {"0": np.arange(numel, dtype=np.float32).tobytes()})
    tracemalloc.start()
    try:
        got = read_weights(p).tensors
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * (numel * 4)                                 # 50 copies would be 50 MiB
    assert all(np.shares_memory(got["w0"], got[f"w{i}"]) for i in range(50))
    assert not got["w7"].flags.writeable                          # shared: read-only
    np.testing.assert_array_equal(got["half"], np.arange(numel // 2, numel, dtype=np.float32))


def test_empty_torch_tensors_with_enormous_strides_read_as_empty(tmp_path):
    from _attacks_io import _tensor_pickle, _torch_zip
    p = tmp_path / "empty.pth"
    _torch_zip(p, _tensor_pickle(4, (0, 4), (2 ** 60, 1)))
    assert read_weights(p).tensors["fc.weight"].shape == (0, 4)


# --- pickles ---------------------------------------------------------------------------------
def _pd(tmp_path, obj_bytes, name="w.pdparams"):
    p = tmp_path / name
    p.write_bytes(obj_bytes)
    return p


def test_a_pickle_of_too_many_objects_is_refused_before_loading(tmp_path):
    body = b"\x80\x04}" + A._binunicode("w") + b"](" + b"]" * 5000 + b"es."
    p = _pd(tmp_path, body)
    with B.limits(max_objects=4000):
        with pytest.raises(FormatError, match=r"more than 4,000 objects"):
            read_paddle(p)
    assert len(read_paddle(p).extras["w"]) == 5000


@pytest.mark.parametrize("label", ["tuple-keys", "frozenset-keys", "set-items", "frozenset-call",
                                   "dict-call"])
def test_keys_that_can_be_solved_to_collide_are_refused(tmp_path, label):
    tuples = A.colliding_tuples(50)
    assert len({hash(t) for t in tuples}) == 1                     # the solver is right
    frozen = A.colliding_pairs_frozen(50)
    assert len({hash(frozenset(t)) for t in frozen}) == 1
    pairs = b"".join(A._int(a) + A._int(b) + b"\x86" for a, b in tuples)
    body = {
        "tuple-keys": b"}(" + b"".join(A._int(a) + A._int(b) + b"\x86K\x00" for a, b in tuples) + b"u",
        "frozenset-keys": b"}(" + b"".join(b"(" + A._int(a) + A._int(b) + b"\x91K\x00"
                                           for a, b in frozen) + b"u",
        "set-items": b"\x8f(" + pairs + b"\x90",
        "frozenset-call": b"cbuiltins\nfrozenset\n(](" + pairs + b"etR",
        "dict-call": b"cbuiltins\ndict\n(](" + b"".join(
            A._int(a) + A._int(b) + b"\x86K\x00\x86" for a, b in tuples) + b"etR",
    }[label]
    p = _pd(tmp_path, A._proto4(b"}" + A._binunicode("w") + body + b"s"))
    with pytest.raises(FormatError, match=r"refused to unpickle: .*(key or item|dict key or set "
                                          r"item) .*(tuple|frozenset|not a string)"):
        read_paddle(p)


def test_plain_keys_still_load(tmp_path):
    state = {"w": np.zeros(2, np.float32), "opt": {0: 1.5, 1: 2.5, -3: None},
             "flags": {True: b"x", None: "y"}, "names": {"a", "b"}, "f": frozenset({1, 2})}
    got = loads(pickle.dumps(state, 2))
    assert got["opt"] == {0: 1.5, 1: 2.5, -3: None} and got["names"] == {"a", "b"}
    assert got["f"] == frozenset({1, 2})
    assert loads(pickle.dumps(state, 4))["flags"] == {True: b"x", None: "y"}


# --- shards ----------------------------------------------------------------------------------
def test_a_shard_file_is_read_once_whatever_its_names(tmp_path, monkeypatch):
    blob = tmp_path / "blob.safetensors"
    A._big_header_safetensors(blob, 300)
    wmap = {}
    for i in range(40):
        os.symlink(blob, tmp_path / f"s{i}.safetensors")
        wmap[f"t{i}"] = f"s{i}.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wmap}))
    calls = []
    real = safetensors.read_header
    monkeypatch.setattr(safetensors, "read_header", lambda p: calls.append(p) or real(p))
    got = hub.read(tmp_path / "model.safetensors.index.json")
    assert len(got.tensors) == 40 and len(calls) == 1
    assert any("40 shard names are 1 distinct file" in n for n in got.notes)


# --- name maps --------------------------------------------------------------------------------
def _naive(nm, name):
    """translate() by trying every pattern in file order, as before the index."""
    if name in nm.exact:
        return nm.exact[name]
    for pattern, value, _ in nm.patterns:
        groups = pattern.match(name)
        if groups is not None:
            if value is None or "*" not in value:
                return value
            pieces = value.split("*")
            return "".join(p + g for p, g in zip(pieces, groups)) + pieces[-1]
    return name


def test_the_pattern_index_translates_as_trying_every_key():
    alphabet = "ab.1"
    r = random.Random(3)
    for _ in range(30):
        keys = {}
        for _ in range(r.randint(1, 12)):
            key = "".join(r.choice(alphabet + "**") for _ in range(r.randint(1, 6)))
            if "*" in key and "**" not in key:
                keys[key] = r.choice([None, "x", "*y" * key.count("*")])
        if not keys:
            continue
        nm = parse_map(keys, "(random)")
        for _ in range(60):
            name = "".join(r.choice(alphabet) for _ in range(r.randint(1, 9)))
            assert nm.translate(name) == _naive(nm, name), (keys, name)


def test_many_pattern_keys_finish_fast_or_say_why(tmp_path):
    names = {f"zq{j}z": np.zeros(1) for j in range(1000)}
    nm = parse_map({f"*q{i}z": f"x{i}" for i in range(20_000)}, "map.json")
    out, origin, _ = nm.apply(names)                              # indexed: each name a few keys
    assert origin["x5"] == "zq5z"
    heavy = parse_map({f"*qqqq*{i}*": None for i in range(20_000)}, "heavy.json")
    with pytest.raises(InputError, match=r"name map heavy\.json: its 20000 pattern keys would "
                                         r"need more than 1,000,000 match steps"):
        heavy.apply({f"zqqqqz{j}z": 1 for j in range(1000)})
    assert NameMap().translate("a.b") == "a.b"


def test_dialects_and_last_stay_within_the_work_cap():
    """``@DIALECT`` sections: each #when tried counts as a full match (20,000 sections against
    1,000 names is refused instead of 20 M matches); ``{last}``: one prefix index per
    application, as the scan of every reference name per candidate it replaces (which also
    met a 5,000-digit block number: int() refuses those)."""
    names = {f"n{j}": np.zeros(1) for j in range(1000)}
    many = parse_map({f"@d{i}": {"#when": f"n*{i}q", f"x{i}": "fc"} for i in range(20_000)}, "d.json")
    with pytest.raises(InputError, match=r"name map d\.json: .* more than 1,000,000 match steps"):
        many.apply(names)
    reference = [f"s{i}.{j}" for i in range(50) for j in range(i + 1)] + [f"s1.{'9' * 5000}", "s2.x3"]
    nm = parse_map({"*": "*.{last}"}, "last.json")
    out, origin, _ = nm.apply({f"s{i}": np.zeros(1) for i in range(52)}, reference=reference)

    def naive(prefix):                                  # the reference's last block, by hand
        found = [int(n[len(prefix):]) for n in reference
                 if n.startswith(prefix) and n[len(prefix):].isdigit() and len(n) - len(prefix) < 10]
        return f"{prefix}{max(found)}" if found else f"{prefix}{{last}}"
    assert list(out) == [naive(f"s{i}.") for i in range(52)]
    assert origin["s49.49"] == "s49" and "s50.{last}" in out


# --- a tar member decoded straight into its array ---------------------------------------------
def test_a_compressed_record_is_not_held_twice(tmp_path):
    array = np.zeros((16 << 20) // 4, np.float32)                  # 16 MiB of zeros
    data = encode_record(array)
    p = tmp_path / "w.tar.gz"
    with tarfile.open(p, "w:gz") as tar:
        info = tarfile.TarInfo("model/conv1_weights")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    tracemalloc.start()
    try:
        got = read_paddle(p).tensors["conv1_weights"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.shape == array.shape and peak < 1.5 * array.nbytes, peak / array.nbytes


def test_a_zip64_or_plain_npz_written_by_numpy_still_reads(tmp_path):
    arrays = {"a": np.arange(10.0), "b": np.ones((2, 3), np.float32)}
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "x.npz", **arrays)
        got = B.read_npz(tmp_path / "x.npz")
        assert list(got) == ["a", "b"] and np.array_equal(got["b"], arrays["b"])
