"""Fixture lane: tiny models saved by real Paddle, loaded and run without Paddle.

reference/paddle_models.py (``fixtures`` command, Paddle 3.3.1, PaddleClas 2.6.0 model
files) cut four real models down to their first stage, gave them random weights and
random BN statistics, saved them as ``.pdparams`` (structured keys + table), a
per-parameter directory (ParamAttr names) and jit.save ``.pdiparams`` + ``.json``, and
recorded float64 and float32 logits and intermediates at 19x15, batch 2. Everything the
comparisons need came from Paddle; the architecture each file must be read as is the
configuration the script recorded, not one this package computed.
"""

import hashlib
import json

import numpy as np
import pytest

from numpy_resnext.archs import ArchConfig
from numpy_resnext.archs import PADDLE_BN_EPS
from numpy_resnext.errors import WeightsError
from numpy_resnext.io import load_weights, read_paddle
from numpy_resnext.archs import MATH_FIELDS
from numpy_resnext.model import build

from _arrays import rel_err

TOL64, TOL32 = 1e-10, 1e-5

# stem, layout, the scheme the file must be recognised as
CASES = [tuple(line.split()) for line in """
    tiny_vision      pdparams  paddle_vision
    tiny_resnext     pdparams  ppcls
    tiny_resnext     dir       ppcls_param
    tiny_resnext_vd  pdparams  ppcls
    tiny_resnext_vd  infer     ppcls_param
    tiny_wsl         pdparams  ppcls_wsl
""".strip().splitlines()]


def paddle_entries(fixtures_dir):
    """The "paddle/" entries of the shared MANIFEST.json, keyed by path inside paddle/."""
    manifest = json.loads((fixtures_dir / "MANIFEST.json").read_text())
    return {k[len("paddle/"):]: v for k, v in manifest.items() if k.startswith("paddle/")}


@pytest.fixture(scope="module")
def paddle_dir(fixtures_dir):
    d = fixtures_dir / "paddle"
    if not paddle_entries(fixtures_dir):
        pytest.fail(f"{fixtures_dir}/MANIFEST.json has no paddle/ entries: "
                    f"run reference/paddle_models.py fixtures")
    return d


def meta_of(paddle_dir, stem):
    return json.loads((paddle_dir / f"{stem}.json").read_text())


def recorded_config(meta):
    return ArchConfig(**{k: v for k, v in meta["config"].items()})


def test_manifest_hashes_and_size(paddle_dir, fixtures_dir):
    entries = paddle_entries(fixtures_dir)
    total = 0
    for rel, entry in entries.items():
        assert entry["paddle"] == "3.3.1", rel
        data = (paddle_dir / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], rel
        total += len(data)
    assert total < 3_000_000, f"committed Paddle fixtures grew to {total:,} bytes"


@pytest.mark.parametrize("stem,layout,scheme", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_tiny_model_matches_paddle(paddle_dir, stem, layout, scheme):
    meta = meta_of(paddle_dir, stem)
    loaded = load_weights(paddle_dir / meta["files"][layout])
    assert loaded.scheme == scheme
    want = recorded_config(meta)
    for f in MATH_FIELDS:
        assert getattr(loaded.config, f) == getattr(want, f), f
    assert loaded.report.missing == [] and loaded.report.unexpected == []
    assert all(v.dtype == np.float32 for v in loaded.params.values())   # dtype as stored
    golden = np.load(paddle_dir / meta["golden"])
    for dtype, key, tol in (("float64", "64", TOL64), ("float32", "32", TOL32)):
        names = [k.split("/", 1)[1] for k in golden.files if k.startswith(f"f{key}/")]
        assert len(names) >= 3
        model = build(loaded.config, weights=loaded.params, dtype=dtype)
        logits, inter = model(golden["x"].astype(dtype), keep=names)
        errs = {n: rel_err(inter[n], golden[f"f{key}/{n}"]) for n in names}
        errs["logits"] = rel_err(logits, golden[f"logits{key}"])
        worst = max(errs, key=errs.get)
        assert errs[worst] <= tol, (dtype, worst, errs)
        np.testing.assert_array_equal(logits.argmax(1), golden[f"logits{key}"].argmax(1))


@pytest.mark.parametrize("stem", ["tiny_resnext", "tiny_resnext_vd", "tiny_wsl"])
def test_pdparams_table_names_load_the_same(paddle_dir, stem):
    """paddle.save's StructuredToParameterName@@ names (ParamAttr names) map too."""
    meta = meta_of(paddle_dir, stem)
    pf = read_paddle(paddle_dir / meta["files"]["pdparams"])
    by_param = {pf.structured_to_param[k]: v for k, v in pf.tensors.items()}
    a = load_weights(pf)
    b = load_weights(by_param)
    assert b.scheme in ("ppcls_param", "ppcls_wsl_param") and b.scheme != a.scheme
    assert list(a.params) == list(b.params)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    # canonical -> file names point at the same arrays in both namings
    for name, fname in b.file_names.items():
        assert pf.structured_to_param[a.file_names[name]] == fname


def test_fc_is_transposed_from_paddles_in_out(paddle_dir):
    meta = meta_of(paddle_dir, "tiny_vision")
    pf = read_paddle(paddle_dir / meta["files"]["pdparams"])
    stored = pf.tensors["fc.weight"]
    assert stored.shape == (256, 5)                  # Paddle Linear: [in, out]
    loaded = load_weights(pf)
    assert loaded.params["fc.weight"].shape == (5, 256)
    np.testing.assert_array_equal(loaded.params["fc.weight"], stored.T)


def test_strict_errors_name_both_namings(paddle_dir):
    pf = read_paddle(paddle_dir / "tiny_resnext.pdparams")
    broken = dict(pf.tensors)
    del broken["bb_0_0.conv1._conv.weight"]                      # missing
    broken["bb_0_0.conv0._batch_norm._mean"] = np.zeros(3, np.float32)   # wrong shape
    broken["bb_0_9.conv0._conv.weight"] = np.zeros((1, 1, 1, 1), np.float32)  # unexpected
    with pytest.raises(WeightsError) as info:
        load_weights(broken, arch=load_weights(pf).config)
    msg = str(info.value)
    assert "1 missing: layer1.0.conv2.weight (file: bb_0_0.conv1._conv.weight)" in msg
    assert "1 unexpected: bb_0_9.conv0._conv.weight" in msg
    assert "layer1.0.bn1.running_mean (file: bb_0_0.conv0._batch_norm._mean): expected shape (128,), found (3,)" in msg


def test_non_strict_backbone_without_head(paddle_dir):
    pf = read_paddle(paddle_dir / "tiny_resnext.pdparams")
    backbone = {k: v for k, v in pf.tensors.items() if not k.startswith("out.")}
    with pytest.raises(WeightsError, match="number of classes"):
        load_weights(backbone)
    full = load_weights(pf)
    with pytest.raises(WeightsError, match="2 missing: fc.weight"):
        load_weights(backbone, arch=full.config)
    partial = load_weights(backbone, arch=full.config, strict=False)
    assert [c for c, _ in partial.report.missing] == ["fc.weight", "fc.bias"]
    assert "fc.weight" not in partial.params and len(partial.params) == len(full.params) - 2
    model = build(full.config, weights=partial.params, strict=False)
    assert model.load_report.as_dict()["missing"] == ["fc.weight", "fc.bias"]


def test_convert_writes_canonical_npz_that_loads_back(paddle_dir, tmp_path, capsys):
    from numpy_resnext.cli import main
    out = tmp_path / "w.npz"
    assert main(["convert", "--weights", str(paddle_dir / "tiny_resnext_vd_infer"), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "naming scheme ppcls_param" in printed and "custom_1_32x4d_vd" in printed
    direct = load_weights(paddle_dir / "tiny_resnext_vd.pdparams")
    with np.load(out, allow_pickle=False) as z:
        assert list(z.files) == list(direct.params)
        for name in z.files:
            np.testing.assert_array_equal(z[name], direct.params[name], err_msg=name)
    again = load_weights(out)
    # canonical names are run as torch runs them: BatchNorm's epsilon is then 1e-5, no
    # longer Paddle's float32(1e-5) (convert says so; --bn-eps keeps Paddle's)
    assert direct.config.bn_eps == PADDLE_BN_EPS and "BatchNorm epsilon" in printed
    assert again.scheme == "canonical" and again.config == direct.config.replace(bn_eps=1e-5)
    # a named architecture that disagrees fails with exit status 2 and writes nothing
    bad = tmp_path / "bad.npz"
    assert main(["convert", "ResNeXt50_vd_32x4d", "--weights", str(out), "--output", str(bad)]) == 2
    assert "disagrees" in capsys.readouterr().err and not bad.exists()


def test_legacy_tar_of_parameter_files(paddle_dir, tmp_path):
    """PaddleClas's legacy <Name>_pretrained.tar: the per-parameter directory, packed."""
    import tarfile
    tar = tmp_path / "Tiny_pretrained.tar"
    with tarfile.open(tar, "w") as t:
        t.add(paddle_dir / "tiny_resnext_params", arcname="Tiny_pretrained")
    packed, unpacked = load_weights(tar), load_weights(paddle_dir / "tiny_resnext_params")
    assert packed.scheme == unpacked.scheme == "ppcls_param"
    assert packed.config == unpacked.config
    for name in unpacked.params:
        np.testing.assert_array_equal(packed.params[name], unpacked.params[name], err_msg=name)


@pytest.mark.parametrize("suffix", ["", ".pdiparams", ".json"])
def test_inference_files_by_prefix_params_or_program(paddle_dir, suffix):
    loaded = load_weights(str(paddle_dir / "tiny_resnext_vd_infer") + suffix)
    reference = load_weights(paddle_dir / "tiny_resnext_vd.pdparams")
    assert loaded.scheme == "ppcls_param" and loaded.config == reference.config
    for name in reference.params:
        np.testing.assert_array_equal(loaded.params[name], reference.params[name], err_msg=name)
