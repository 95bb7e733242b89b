"""Paddle weight formats read without Paddle (numpy_resnext.io), fixture lane.

Every fixture under reference/fixtures/formats/ was written by Paddle 3.3.1
(reference/make_format_fixtures.py) together with Paddle's own view of the tensors
(*.expected.npz); here they are read back with NumPy only and compared bit for bit.
The rest checks the safety and error paths: hostile pickles are refused without running,
and truncated or garbled files raise FormatError naming the file and the byte or tensor.
"""

import json
import os
import pickle
import re
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_resnext.errors import FormatError
from numpy_resnext.io import read_paddle
from numpy_resnext.io.paddle import detect_kind
from numpy_resnext.io.paddle.pdparams import SPLIT_INFO_KEY, read_pdparams, reassemble_split
from numpy_resnext.io.paddle.program import persistable_variables
from numpy_resnext.io.paddle.records import encode_record, read_combined, read_record
from numpy_resnext.io.unpickle import loads as safe_loads

FORMATS = Path(__file__).resolve().parent.parent / "reference" / "fixtures" / "formats"

# (what read_paddle is given, expected npz, kind) — every layout Paddle wrote for us.
CASES = [
    ("tiny_p4.pdparams", "tiny_pdparams", "pdparams"),
    ("tiny_p2.pdparams", "tiny_pdparams", "pdparams"),
    ("split_p2.pdparams", "tiny_pdparams", "pdparams"),
    ("pir/tiny", "tiny_by_param", "combined"),
    ("pir/tiny.pdiparams", "tiny_by_param", "combined"),
    ("pir/tiny.json", "tiny_by_param", "combined"),
    ("legacy/tiny", "legacy_by_param", "combined"),
    ("legacy/tiny.pdmodel", "legacy_by_param", "combined"),
    ("static_dir", "static", "record-dir"),
    ("static_dir.tar", "static", "record-tar"),
    ("static_combined/__params__", "static", "combined"),
    ("static_combined/__model__", "static", "combined"),
    ("single.record", "single", "record"),
    ("static_combined", "static", "combined"),
    ("pir", "tiny_by_param", "combined"),
    ("single.pdtensor", "single_pdtensor", "pdparams"),
    ("tiny.pdopt", "tiny_pdopt", "pdparams"),
]


def expected(stem):
    with np.load(FORMATS / f"{stem}.expected.npz") as npz:
        return {k: npz[k] for k in npz.files}


def assert_same_tensors(got, want):
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype, (name, got[name].dtype, value.dtype)
        assert got[name].shape == value.shape, (name, got[name].shape, value.shape)
        assert np.array_equal(got[name], value), (name, got[name].ravel()[:4],
                                                   value.ravel()[:4])


def copy_fixture(tmp_path, rel):
    src = FORMATS / rel
    dst = tmp_path / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst


# ---------------------------------------------------------------- every format, exactly

@pytest.mark.parametrize("rel,stem,kind", CASES, ids=[c[0] for c in CASES])
def test_fixture_reads_exactly_as_paddle_holds_it(rel, stem, kind):
    got = read_paddle(FORMATS / rel)
    assert got.kind == kind
    assert_same_tensors(got.tensors, expected(stem))


def test_fixtures_cover_fp16_fp32_fp64_and_integers():
    dtypes = {str(a.dtype) for stem in ("tiny_pdparams", "static")
              for a in expected(stem).values()}
    assert {"float16", "float32", "float64", "int64", "int32"} <= dtypes


def test_pdparams_keeps_state_dict_order_and_name_table():
    names = json.loads((FORMATS / "tiny_names.json").read_text())  # Paddle's key -> name
    for protocol in (4, 2):
        got = read_paddle(FORMATS / f"tiny_p{protocol}.pdparams")
        assert list(got.tensors) == list(names)
        assert got.structured_to_param == names
        assert "StructuredToParameterName@@" not in got.tensors


def test_pdopt_keeps_the_scheduler_state_aside():
    got = read_paddle(FORMATS / "tiny.pdopt")
    assert got.extras["LR_Scheduler"]["last_lr"] == 0.1
    assert any("LR_Scheduler" in note for note in got.notes)
    assert all(name.startswith("linear_0.") for name in got.tensors)  # Adam on fc only


def test_pir_and_legacy_programs_name_the_same_parameters_in_sorted_order():
    names = json.loads((FORMATS / "tiny_names.json").read_text())
    pir = read_paddle(FORMATS / "pir" / "tiny")
    assert list(pir.tensors) == sorted(names.values())
    # String order, not numeric: linear_10 comes before linear_2 in the combined file.
    order = list(pir.tensors)
    assert order.index("linear_10.w_0") < order.index("linear_2.w_0")
    legacy = read_paddle(FORMATS / "legacy" / "tiny")
    assert list(legacy.tensors) == sorted(legacy.tensors)
    # The legacy jit.save writes <prefix>.pdiparams.info: structured key -> parameter name.
    assert sorted(legacy.structured_to_param) == sorted(names)
    assert sorted(legacy.structured_to_param.values()) == sorted(legacy.tensors)


def test_program_lists_persistables_sorted_without_feed_fetch():
    want = sorted(expected("static"))
    assert [v.name for v in persistable_variables(FORMATS / "static_combined" / "__model__")] \
        == want
    pir = persistable_variables(FORMATS / "pir" / "tiny.json")
    conv = [v for v in pir if v.dims == (4, 3, 3, 3)]
    assert len(conv) == 1


def test_record_dir_skips_the_stray_program_with_a_note():
    got = read_paddle(FORMATS / "static_dir")
    assert any("__model__" in note for note in got.notes)
    assert "__model__" not in got.tensors


def test_record_dir_wrapped_in_one_subdirectory(tmp_path):
    shutil.copytree(FORMATS / "static_dir", tmp_path / "ResNeXt_pretrained")
    got = read_paddle(tmp_path)
    assert_same_tensors(got.tensors, expected("static"))
    assert "ResNeXt_pretrained" in got.notes[0]


def test_encode_record_matches_paddle_bytes():
    """Our codec writes byte for byte what paddle.static.save_vars wrote."""
    for name, value in expected("static").items():
        assert encode_record(value) == (FORMATS / "static_dir" / name).read_bytes(), name


def test_split_fixture_was_really_split_by_paddle():
    raw = safe_loads((FORMATS / "split_p2.pdparams").read_bytes())
    info = json.loads((FORMATS / "split_info.json").read_text())
    assert raw[SPLIT_INFO_KEY].keys() == info.keys() and len(info) >= 2
    for key, entry in info.items():
        assert key not in raw
        assert all(s in raw for s in entry["slices"])
    got = read_pdparams(FORMATS / "split_p2.pdparams")
    assert got.split_info.keys() == info.keys()
    assert any("reassembled" in n for n in got.notes)


# ---------------------------------------------------------------- split tensors by hand

def _split_dict(rng):
    big = rng.standard_normal((3, 4, 5)).astype(np.float32)  # 60 elements -> 25+25+10
    flat = big.ravel()
    obj = OrderedDict([("a", np.arange(3.0)), ("big@@.0", flat[:25]), ("big@@.1", flat[25:50]),
                       ("big@@.2", flat[50:]), ("z", np.int64(-1) * np.ones(2, np.int64))])
    obj[SPLIT_INFO_KEY] = {"big": {"OriginShape": (3, 4, 5),
                                   "slices": ["big@@.0", "big@@.1", "big@@.2"]}}
    return obj, big


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_empty_and_scalar_arrays_round_trip(tmp_path, protocol):
    """Protocol 2 spells b"" as __builtin__.bytes(): empty arrays must still load."""
    obj = {"empty": np.zeros((0, 3), np.float16), "scalar": np.array(2.5),
           "fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))}
    path = tmp_path / "e.pdparams"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    got = read_paddle(path).tensors
    for key, value in obj.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape
        assert np.array_equal(got[key], value)


def test_bytes_with_arguments_is_refused():
    with pytest.raises(FormatError, match=r"bytes\(\) with arguments"):
        safe_loads(b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x40\x85R.", "b.pkl")


@pytest.mark.parametrize("protocol", [2, 4])
def test_hand_built_split_is_reassembled(tmp_path, rng, protocol):
    obj, big = _split_dict(rng)
    path = tmp_path / "split.pdparams"
    path.write_bytes(pickle.dumps(dict(obj), protocol=protocol))
    got = read_paddle(path)
    assert list(got.tensors) == ["a", "big", "z"]
    assert got.tensors["big"].shape == (3, 4, 5)
    assert np.array_equal(got.tensors["big"], big)


def test_split_with_missing_or_short_slices_is_an_error(rng):
    obj, _ = _split_dict(rng)
    entries = OrderedDict((k, v) for k, v in obj.items() if k != SPLIT_INFO_KEY)
    info = obj[SPLIT_INFO_KEY]
    with pytest.raises(FormatError, match=r"big@@\.1.*missing"):
        reassemble_split({k: v for k, v in entries.items() if k != "big@@.1"}, info, "f")
    bad = {"big": {"OriginShape": (3, 4, 6), "slices": info["big"]["slices"]}}
    with pytest.raises(FormatError, match=r"'big'.*60 elements.*72"):
        reassemble_split(entries, bad, "f")
    entries["big@@.1"] = entries["big@@.1"].reshape(5, -1)
    with pytest.raises(FormatError, match=r"f: slices of tensor 'big' must be 1-D arrays, "
                       r"found big@@\.1: shape \[5, 5\]$"):
        reassemble_split(entries, info, "f")


# ---------------------------------------------------------------- hostile pickles

class _Hostile:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _hostile_pdparams(tmp_path, payload, protocol=4):
    obj = {"conv.weight": np.ones((2, 2), np.float32), "evil": payload,
           "StructuredToParameterName@@": {"conv.weight": "conv2d_0.w_0"}}
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_calling_os_system_is_refused_and_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = _hostile_pdparams(tmp_path, _Hostile(os.system, f"touch {marker}"), protocol)
    assert b"system" in path.read_bytes()
    with pytest.raises(FormatError, match=r"evil\.pdparams.*refused.*(posix|nt)\.system"):
        read_paddle(path)
    assert not marker.exists()


def test_refusal_names_how_far_the_file_was_read(tmp_path):
    """Protocol 2 has no frames: the unpickler stops just after the refused global."""
    path = _hostile_pdparams(tmp_path, _Hostile(os.system, "true"), 2)
    at = path.read_bytes().index(b"system")
    with pytest.raises(FormatError, match=r"evil\.pdparams.*system.*read up to byte \d+") \
            as err:
        read_paddle(path)
    stopped = int(re.search(r"read up to byte (\d+)", str(err.value)).group(1))
    assert at < stopped <= path.stat().st_size


@pytest.fixture
def opens_a_file(tmp_path):
    """(a .pdparams whose unpickling creates ``marker``, marker), for the test and its control."""
    marker = tmp_path / "opened"
    return _hostile_pdparams(tmp_path, _Hostile(open, str(marker), "w")), marker


def test_pickle_calling_open_is_refused_and_not_run(opens_a_file):
    path, marker = opens_a_file
    with pytest.raises(FormatError, match=r"refused.*(io|builtins)\.open"):
        read_paddle(path)
    assert not marker.exists()


def test_the_same_hostile_file_does_run_under_plain_pickle(opens_a_file):
    """Control: the test files above are dangerous, so refusing them means something."""
    path, marker = opens_a_file
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_refused_module_is_never_imported(tmp_path):
    sys.modules.pop("antigravity", None)  # importing it would open a web browser
    path = tmp_path / "evil.pdparams"
    # protocol 2: GLOBAL 'antigravity geohash', EMPTY_TUPLE, REDUCE, STOP
    path.write_bytes(b"\x80\x02cantigravity\ngeohash\n)R.")
    with pytest.raises(FormatError, match=r"evil\.pdparams.*antigravity\.geohash"):
        read_paddle(path)
    assert "antigravity" not in sys.modules


@pytest.mark.parametrize("payload,match", [
    (_Hostile(eval, "1+1"), r"builtins\.eval"),
    (_Hostile(np.load, "x.npy"), r"numpy.*load"),
    (np.array([{"a": 1}], dtype=object), r"dtype 'O8'"),
    (_Hostile(np.dtype, "O"), r"dtype 'O'"),
    (np.array([b"abc"]), r"dtype 'S3'"),
])
def test_other_callables_and_object_arrays_are_refused(tmp_path, payload, match):
    with pytest.raises(FormatError, match=match):
        read_paddle(_hostile_pdparams(tmp_path, payload))


def test_only_latin1_codec_and_no_persistent_ids():
    codec = pickle.dumps(_Hostile(__import__("_codecs").encode, "abc", "rot13"), protocol=2)
    with pytest.raises(FormatError, match="latin1"):
        safe_loads(codec, "codec.pkl")

    class Persist(pickle.Pickler):
        def persistent_id(self, obj):
            return "storage" if isinstance(obj, str) else None

    import io
    buf = io.BytesIO()
    Persist(buf, protocol=2).dump({"x": "data"})
    with pytest.raises(FormatError, match="BINPERSID"):
        safe_loads(buf.getvalue(), "torch-like.pkl")


# ---------------------------------------------------------------- truncated and garbled

def test_length_bomb_is_caught_before_allocating():
    """BINBYTES claiming 4 GB in a tiny file: refused from the header, nothing allocated."""
    bomb = b"\x80\x04B" + (2**32 - 1).to_bytes(4, "little") + b"abc."
    with pytest.raises(FormatError, match=r"bomb\.pkl: truncated.*BINBYTES at byte 2 "
                                          r"claims 4294967295 bytes, only 4 remain"):
        safe_loads(bomb, "bomb.pkl")


@pytest.mark.parametrize("put", [b"r\xff\xff\xff\x0f", b"p268435456\n"])
def test_memo_index_bomb_is_refused(put):
    """LONG_BINPUT/PUT n makes the C unpickler allocate a 2n-entry memo (2 GB here)."""
    bomb = b"\x80\x02]" + put + b"."
    with pytest.raises(FormatError, match=r"memo index (268435456|268435455) after only 3"):
        safe_loads(bomb, "memo.pkl")


def test_array_state_inconsistent_with_its_data_is_refused():
    good = pickle.dumps(np.arange(6, dtype=np.float32), protocol=4)
    data = np.arange(6, dtype=np.float32).tobytes()
    bad = good.replace(b"\x8c\x02f4", b"\x8c\x02f8")  # 24 bytes cannot be 6 float64
    assert bad != good and data in bad
    with pytest.raises(FormatError, match=r"needs 48 bytes of data, the file holds 24"):
        safe_loads(bad, "f")


@pytest.mark.parametrize("rel", ["tiny_p4.pdparams", "tiny_p2.pdparams",
                                 "pir/tiny.pdiparams", "single.record",
                                 "static_dir/conv.w_0"])
@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.3, 0.7, 0.999])
def test_truncated_file_is_a_format_error_naming_the_file(tmp_path, rel, fraction):
    path = copy_fixture(tmp_path, rel if "pir" not in rel else "pir")
    path = tmp_path / rel
    data = path.read_bytes()
    cut = max(1, int(len(data) * fraction))
    path.write_bytes(data[:cut])
    target = path if "pir" not in rel else tmp_path / "pir" / "tiny"
    with pytest.raises(FormatError) as err:
        read_paddle(target)
    assert path.name in str(err.value)


@given(cut=st.integers(min_value=0, max_value=10_000))
def test_any_truncation_of_a_record_file_names_file_and_byte(cut):
    data = (FORMATS / "static_dir" / "conv.w_0").read_bytes()
    cut %= len(data)
    with pytest.raises(FormatError, match=r"conv\.w_0.*byte \d+"):
        read_record(data[:cut], 0, "conv.w_0", "conv.w_0")


@given(data=st.data())
def test_any_byte_flip_in_a_record_reads_or_raises_format_error(data):
    """Corruption never escapes as a NumPy/IndexError: either readable or FormatError."""
    raw = bytearray((FORMATS / "static_dir" / "w_fp64").read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255))
    try:
        read_record(bytes(raw), 0, "w_fp64")
    except FormatError as exc:
        assert "w_fp64" in str(exc)


@given(data=st.data())
def test_any_byte_flip_in_a_pickle_reads_or_raises_format_error(data):
    raw = bytearray((FORMATS / "tiny_p4.pdparams").read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255))
    try:
        safe_loads(bytes(raw), "flipped.pdparams")
    except FormatError as exc:
        assert "flipped.pdparams" in str(exc)


@given(data=st.data())
def test_any_byte_flip_in_a_program_reads_or_raises_format_error(data, tmp_path_factory):
    name = data.draw(st.sampled_from(["static_combined/__model__", "legacy/tiny.pdmodel"]))
    raw = bytearray((FORMATS / name).read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("prog") / "__model__"
    path.write_bytes(bytes(raw))
    try:
        persistable_variables(path)
    except FormatError as exc:
        assert "__model__" in str(exc)


def _record(array):
    return bytearray(encode_record(array))


def test_wrong_record_magic_names_the_byte():
    raw = _record(np.ones(3, np.float32))
    raw[0] = 7
    with pytest.raises(FormatError, match=r"f: bad record magic at byte 0: version 7"):
        read_record(bytes(raw), 0, "f")


def test_wrong_pickle_magic(tmp_path):
    path = tmp_path / "zip.pdparams"
    path.write_bytes(b"PK\x03\x04 not a pickle")
    with pytest.raises(FormatError, match=r"zip\.pdparams: wrong magic.*50 4b 03 04"):
        read_paddle(path)


@pytest.mark.parametrize("code,match", [(99, "unknown data type code 99"),
                                        (22, "BF16"), (33, "FP8_E5M2")])
def test_bad_dtype_code_names_tensor(code, match):
    raw = _record(np.ones(3, np.float32))
    desc = raw.index(b"\x08\x05\x10\x03")
    raw[desc + 1] = code
    with pytest.raises(FormatError, match=rf"f, tensor 'w'.*{match}"):
        read_record(bytes(raw), 0, "f", "w")


def test_bad_protobuf_in_tensor_desc():
    raw = _record(np.ones(3, np.float32))
    desc = raw.index(b"\x08\x05\x10\x03")
    raw[desc + 2] = 0x0F  # field 1, wire type 7: does not exist
    with pytest.raises(FormatError, match=r"wire type 7.*byte 22"):
        read_record(bytes(raw), 0, "f")
    raw[desc + 2] = 0x10
    raw[desc + 3] = 0x83  # varint that never ends inside the message
    with pytest.raises(FormatError, match=r"varint starting at byte 23 runs past"):
        read_record(bytes(raw), 0, "f")


def test_huge_dims_are_caught_before_numpy():
    raw = encode_record(np.ones(3, np.float32)).replace(b"\x10\x03", b"\x10\xff\xff\xff\xff\x0f")
    raw = raw[:16] + (len(raw[20:-12])).to_bytes(4, "little") + raw[20:]
    with pytest.raises(FormatError, match=r"truncated.*4294967295"):
        read_record(raw, 0, "f")


def test_file_shrinking_while_read_names_file_tensor_and_byte(tmp_path):
    """The data is read straight from the file: a short read is a FormatError, not zeros."""
    from numpy_resnext.io.paddle.records import _Bytes, _decode
    raw = encode_record(np.arange(6, dtype=np.float32))
    path = tmp_path / "shrunk.pdiparams"
    path.write_bytes(raw[:-8])
    with open(path, "rb") as f:  # size as measured before the file lost its last 8 bytes
        src = _Bytes(fileobj=f, size=len(raw))
        with pytest.raises(FormatError, match=r"shrunk\.pdiparams, tensor 'w': the file "
                           r"shrank.*24 bytes of data at byte \d+, found 16"):
            _decode(src, 0, str(path), "w")


def test_combined_file_truncated_names_the_missing_tensor(tmp_path):
    copy_fixture(tmp_path, "pir")
    params = tmp_path / "pir" / "tiny.pdiparams"
    names = sorted(expected("tiny_by_param"))
    one = len(encode_record(expected("tiny_by_param")[names[0]]))
    params.write_bytes(params.read_bytes()[:one])
    with pytest.raises(FormatError, match=rf"after 1 of {len(names)} tensors; tensor "
                                          rf"'{names[1]}' is missing"):
        read_paddle(tmp_path / "pir" / "tiny")


def test_combined_file_with_extra_bytes_or_too_many_names(tmp_path):
    copy_fixture(tmp_path, "pir")
    params = tmp_path / "pir" / "tiny.pdiparams"
    params.write_bytes(params.read_bytes() + encode_record(np.zeros(2, np.float32)))
    names = sorted(expected("tiny_by_param"))
    n = len(names)
    with pytest.raises(FormatError, match=f"bytes remain after the {n} tensors"):
        read_paddle(params)
    with pytest.raises(FormatError, match=rf"after {n} of {n + 1} tensors; tensor 'zz' is"):
        read_combined(FORMATS / "pir" / "tiny.pdiparams", names + ["zz"])


def test_program_shape_disagreeing_with_params_is_named(tmp_path):
    copy_fixture(tmp_path, "pir")
    program = tmp_path / "pir" / "tiny.json"
    text = program.read_text()
    assert text.count("[4,3,3,3]") == 1
    program.write_text(text.replace("[4,3,3,3]", "[4,3,3,2]"))
    with pytest.raises(FormatError, match=r"tensor '.*' has shape \[4, 3, 3, 3\], but "
                                          r"tiny\.json declares \[4, 3, 3, 2\]"):
        read_paddle(tmp_path / "pir" / "tiny")


@pytest.mark.parametrize("garble", ["truncate", "wire7", "json", "nomagic"])
def test_unreadable_program_is_a_format_error(tmp_path, garble):
    if garble in ("truncate", "wire7"):
        copy_fixture(tmp_path, "static_combined")
        program = tmp_path / "static_combined" / "__model__"
        data = bytearray(program.read_bytes())
        if garble == "truncate":
            data = data[:len(data) // 2]
        else:
            data[0] = 0x0F
        program.write_bytes(bytes(data))
        target, match = tmp_path / "static_combined" / "__params__", r"__model__.*byte \d+"
    else:
        copy_fixture(tmp_path, "pir")
        program = tmp_path / "pir" / "tiny.json"
        text = program.read_text()
        program.write_text(text[:100] if garble == "json" else text.replace('"pir"', '"xyz"'))
        target, match = tmp_path / "pir" / "tiny", r"tiny\.json.*(PIR JSON|magic)"
    with pytest.raises(FormatError, match=match):
        read_paddle(target)


def test_missing_program_and_unknown_files(tmp_path):
    copy_fixture(tmp_path, "pir/tiny.pdiparams")
    with pytest.raises(FormatError, match=r"tiny\.pdiparams: .*stores no names.*tiny\.json"):
        read_paddle(tmp_path / "pir" / "tiny.pdiparams")
    odd = tmp_path / "weights.bin"
    odd.write_bytes(b"\x89PNG....")
    with pytest.raises(FormatError, match=r"weights\.bin: unknown weight format.*89 50 4e 47"):
        read_paddle(odd)
    with pytest.raises(FormatError, match="no such file"):
        read_paddle(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="no tensor record files"):
        read_paddle(empty)


def test_detect_kind_by_content_not_only_extension(tmp_path):
    renamed = tmp_path / "weights.bin"
    shutil.copy(FORMATS / "tiny_p4.pdparams", renamed)
    assert detect_kind(renamed) == "pdparams"
    record = tmp_path / "x.pdtensor"
    shutil.copy(FORMATS / "single.record", record)
    assert detect_kind(record) == "record"
    assert detect_kind(FORMATS / "pir" / "tiny") == "prefix"


def test_reader_returns_writable_independent_arrays():
    got = read_paddle(FORMATS / "pir" / "tiny")
    arrays = list(got.tensors.values())
    assert all(a.flags.writeable and a.flags.aligned and a.flags.c_contiguous
               for a in arrays)
    arrays[0][...] = 0  # must not change the next read
    again = read_paddle(FORMATS / "pir" / "tiny")
    assert_same_tensors(again.tensors, expected("tiny_by_param"))
