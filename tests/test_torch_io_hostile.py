"""Hostile and corrupt PyTorch-world files: a clean FormatError, nothing executed, nothing huge
allocated. No torch needed: the files are built here from the committed fixtures.

Each code-execution test writes a marker file from inside the pickle and shows, as a
control, that plain ``pickle.loads`` of the same bytes does create it.
"""

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from numpy_resnext.errors import FormatError, ResNeXtError, WeightsError
from numpy_resnext.io import load_weights
from numpy_resnext.io.torch.file import LEGACY_HEAD

FIX = Path(__file__).resolve().parent.parent / "reference" / "fixtures" / "torch_io"


def members(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def zip_with(tmp_path, replace=None, name="x.pth", compress=zipfile.ZIP_STORED, drop=()):
    found = members(FIX / "micro_zip.pth")
    found.update(replace or {})
    out = tmp_path / name
    with zipfile.ZipFile(out, "w") as z:
        for k, v in found.items():
            if k not in drop:
                z.writestr(k, v, compress_type=compress if k.endswith("data.pkl") else zipfile.ZIP_STORED)
    return out


def legacy_with(tmp_path, main_pickle):
    head = (LEGACY_HEAD + b"." + pickle.dumps(1001, protocol=2)
            + pickle.dumps({"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))
    out = tmp_path / "legacy.pth"
    out.write_bytes(head + main_pickle + pickle.dumps([], protocol=2))
    return out


class Gadget:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def payloads(marker):
    import builtins
    return {"os.system": Gadget(os.system, f"touch {marker}"),
            "builtins.exec": Gadget(builtins.exec, f"open({str(marker)!r}, 'w').close()")}


@pytest.mark.parametrize("gadget", ["os.system", "builtins.exec"])
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_code_in_the_pickle_is_never_run(tmp_path, gadget, container):
    marker = tmp_path / "marker"
    data = pickle.dumps({"conv1.weight": payloads(marker)[gadget]}, protocol=2)
    path = (zip_with(tmp_path, {f"{_root()}data.pkl": data}) if container == "zip"
            else legacy_with(tmp_path, data))
    with pytest.raises(FormatError, match=r"refused to unpickle: global .* not on the allow-list"):
        load_weights(path)
    assert not marker.exists()
    pickle.loads(data)                    # control: a plain unpickler runs it
    assert marker.exists()


def _root():
    return next(n for n in members(FIX / "micro_zip.pth") if n.endswith("data.pkl"))[:-len("data.pkl")]


TORCH_GADGETS = [b"ctorch.storage\n_load_from_bytes\nC\x04abcd\x85R.",
                 b"ctorch.serialization\nload\nX\x01\x00\x00\x00x\x85R.",
                 b"ctorch._tensor\n_rebuild_from_type_v2\n)R.",
                 b"ctorch.jit\nload\nX\x01\x00\x00\x00x\x85R.",
                 b"cbuiltins\ngetattr\n)R.",
                 b"cnumpy\nload\nX\x01\x00\x00\x00x\x85R.",
                 b"cnumpy.core.multiarray\n_reconstruct\n)R.",
                 b"ctorch\nTensor\n)R."]


@pytest.mark.parametrize("body", TORCH_GADGETS, ids=lambda b: b.split(b"\n")[0][1:].decode() + "."
                         + b.split(b"\n")[1].decode())
def test_torch_specific_gadgets_are_refused_by_name(tmp_path, body):
    path = zip_with(tmp_path, {f"{_root()}data.pkl": b"\x80\x02" + body})
    with pytest.raises(FormatError, match="not on the allow-list"):
        load_weights(path)


def _tensor_pickle(size=(3,), stride=(1,), offset=0, numel=3, hooks=b"ccollections\nOrderedDict\n)R",
                   storage=b"FloatStorage", key="0", extra=b""):
    from numpy_resnext.io.torch.save import _int, _ints, _str
    pid = (b"(" + _str("storage") + b"ctorch\n" + storage + b"\n" + _str(key) + _str("cpu")
           + _int(numel) + b"tQ")
    return (b"\x80\x02}(" + _str("fc.bias") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid
            + _int(offset) + _ints(size) + _ints(stride) + b"\x89" + hooks + b"tR" + extra + b"u.")


def _zip_one(tmp_path, pkl, data=b"\0" * 12):
    root = "archive/"
    out = tmp_path / "one.pth"
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(root + "data.pkl", pkl)
        z.writestr(root + "byteorder", b"little")
        z.writestr(root + "data/0", data)
        z.writestr(root + "version", b"3\n")
    return out


def test_a_well_formed_hand_made_file_reads(tmp_path):
    """The builder below is right: only the one field each hostile case changes is wrong."""
    from numpy_resnext.io import read_weights
    tensors = read_weights(_zip_one(tmp_path, _tensor_pickle(), struct.pack("<3f", 1, 2, 3))).tensors
    assert tensors["fc.bias"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("kwargs,data,message", [
    (dict(size=(4,)), None, r"reaches element 3 of storage '0', which holds 3"),
    (dict(offset=1), None, r"reaches element 3"),
    (dict(size=(2, 2), stride=(1, 1)), None, r"reaches element|overlapping"),
    (dict(size=(3, 3), stride=(0, 1)), None, r"overlapping strides"),
    (dict(stride=(-1,)), None, r"non-negative"),
    (dict(numel=2 ** 40, size=(2 ** 40,)), None, r"should hold 1099511627776 elements .* the file holds 12"),
    (dict(), b"\0" * 8, r"should hold 3 elements = 12 bytes, the file holds 8"),
    (dict(size=(1,) * 40, stride=(1,) * 40), None, r"at most 32"),
    (dict(hooks=b"ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00aJ\x01\x00\x00\x00u"), None, "backward hooks"),
    (dict(storage=b"FancyStorage"), None, "torch.FancyStorage is not on the allow-list"),
    (dict(key="../../etc/passwd"), None, "has no member"),
])
def test_tensor_and_storage_checks_before_allocation(tmp_path, kwargs, data, message):
    path = _zip_one(tmp_path, _tensor_pickle(**kwargs), b"\0" * 12 if data is None else data)
    with pytest.raises(FormatError, match=message):
        load_weights(path)


def test_pickle_level_attacks(tmp_path):
    cases = {b"\x80\x02}r\x00\x00\x00\x80.": "memo index",                      # LONG_BINPUT 2**31
             b"\x80\x02ccollections\nOrderedDict\n)R}b.": "the top-level keys are \\(none\\)",
             b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}b.": "BUILD applied",
             b"\x80\x02\x8e\xff\xff\xff\xff\xff\xff\x00\x00.": "corrupt pickle"}      # BINBYTES8 huge
    for body, message in cases.items():
        with pytest.raises(ResNeXtError, match=message):
            load_weights(_zip_one(tmp_path, body))


def test_compressed_and_misplaced_members_are_refused(tmp_path):
    with pytest.raises(FormatError, match="is compressed"):
        load_weights(zip_with(tmp_path, compress=zipfile.ZIP_DEFLATED))
    root = _root()
    stray = zip_with(tmp_path, {"elsewhere/data.pkl": b"x"})
    with pytest.raises(FormatError, match="exactly one <root>/data.pkl|outside"):
        load_weights(stray)
    with pytest.raises(FormatError, match="has no member"):
        load_weights(zip_with(tmp_path, drop={f"{root}data/3"}))


def test_legacy_storage_counts_are_checked(tmp_path):
    import pickletools
    data = bytearray((FIX / "micro_legacy.pth").read_bytes())
    stream = io.BytesIO(bytes(data))
    for _ in range(5):          # magic, protocol, sys_info, the state dict, the key list
        for _ in pickletools.genops(stream):
            pass
    keys_end = stream.tell()    # the first storage's element count; make it claim 2**40
    first = struct.unpack("<q", data[keys_end:keys_end + 8])[0]
    data[keys_end:keys_end + 8] = struct.pack("<q", 2 ** 40)
    bad = tmp_path / "count.pth"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=rf"1099511627776 elements recorded, the pickle says {first}"):
        load_weights(bad)
    bad.write_bytes((FIX / "micro_legacy.pth").read_bytes() + b"\0")
    with pytest.raises(FormatError, match="1 unexpected bytes after the last storage"):
        load_weights(bad)


def _st(tmp_path, header, data=b"", raw=None):
    text = json.dumps(header).encode() if raw is None else raw
    p = tmp_path / "t.safetensors"
    p.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return p


@pytest.mark.parametrize("header,data,message", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "outside the 4-byte"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 12 bytes"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "gap"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "overlap"),
    ({"a": {"dtype": "O", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype 'O'"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b"", "non-negative"),
    ({"__metadata__": {"a": 1}}, b"", "strings to strings"),
    ([1, 2], b"", "JSON object"),
])
def test_safetensors_header_is_checked(tmp_path, header, data, message):
    with pytest.raises(FormatError, match=message):
        load_weights(_st(tmp_path, header, data))


def test_safetensors_header_length_cannot_ask_for_gigabytes(tmp_path):
    p = tmp_path / "h.safetensors"
    p.write_bytes(struct.pack("<Q", 2 ** 62) + b"{}")
    with pytest.raises(FormatError, match="header length"):
        load_weights(p)


def test_shard_index_cannot_leave_its_directory(tmp_path):
    idx = tmp_path / "model.safetensors.index.json"
    idx.write_text(json.dumps({"weight_map": {"fc.bias": "../secret.safetensors"}}))
    with pytest.raises(FormatError, match="not a file name in the index's directory"):
        load_weights(idx)
    idx.write_text(json.dumps({"weight_map": {"fc.bias": "missing.safetensors"}}))
    with pytest.raises(FormatError, match="shard missing.safetensors is missing"):
        load_weights(idx)


def test_checkpoints_without_a_state_dict_say_what_they_hold(tmp_path):
    pkl = b"\x80\x02}(X\x05\x00\x00\x00epochK\x03X\x04\x00\x00\x00lossG?\xe0\x00\x00\x00\x00\x00\x00u."
    with pytest.raises(WeightsError, match=r"no state dict found: the top-level keys are 'epoch', 'loss'"):
        load_weights(_zip_one(tmp_path, pkl))


@pytest.mark.parametrize("fname", ["micro_zip.pth", "micro_legacy.pth", "micro.safetensors",
                                   "micro_checkpoint.pth.tar"])
def test_flipped_bytes_give_clean_errors_or_correct_loads(tmp_path, fname):
    """A byte flipped anywhere: a ResNeXtError or a load (a flipped weight value is still a
    weight), never another exception."""
    import numpy as np
    data = (FIX / fname).read_bytes()
    rng = np.random.default_rng(7)
    positions = sorted(set(rng.integers(0, len(data), 150).tolist()) | set(range(0, 64)))
    for i in positions:
        bad = bytearray(data)
        bad[i] ^= 0xFF
        p = tmp_path / f"flip{Path(fname).suffix}"
        p.write_bytes(bytes(bad))
        try:
            load_weights(p)
        except ResNeXtError:
            pass
