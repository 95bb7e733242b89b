"""Golden dumps against torch, through the torchvision and timm name maps.

Fixture lane (no torch needed): reference/fixtures/torch/*.npz hold every module output of
tiny torchvision-named and timm-named (vd) networks, captured by reference/torch_capture.py
with torch in float64. Their weights and inputs come from a counter-based generator, so they
are rebuilt here bit for bit (checked against the sha256 recorded in MANIFEST.json).
Live lane (``torch`` fixture): the full-size ResNeXt50_32x4d and resnext50d_32x4d, captured
now, at a small input.
"""

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.golden import compare, golden_dump, read_golden
from numpy_resnext.params import param_shapes

ROOT = Path(__file__).resolve().parent.parent


def _load_reference_script():
    spec = importlib.util.spec_from_file_location("torch_capture", ROOT / "reference" / "torch_capture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tc = _load_reference_script()

# our config for each of the script's architectures, and the map its names need
OURS = {
    "tiny": (nrx.custom(depths=(1, 1), cardinality=4, base_width=2, num_classes=10, stem_width=16),
             "torchvision"),
    "tiny_d": (nrx.custom(depths=(1, 1), cardinality=4, base_width=2, num_classes=10, stem_width=16,
                          deep_stem_width=8, stem="deep"), "timm"),
    "resnext50_32x4d": (nrx.get_arch("ResNeXt50_32x4d"), "torchvision"),
    "resnext50d_32x4d": (nrx.get_arch("ResNeXt50_vd_32x4d"), "timm"),
}


def manifest_entry(fixtures_dir, fname):
    data = json.loads((fixtures_dir / "MANIFEST.json").read_text())
    return data[f"torch/{fname}"]


def our_dump(arch, seed, x):
    config, _ = OURS[arch]
    weights = tc.make_weights(param_shapes(config), seed)
    model = nrx.build(config, weights=weights, dtype="float64")
    return golden_dump(model, x)


@pytest.fixture(scope="module", params=sorted(tc.FIXTURE_SPECS))
def fixture_case(request, fixtures_dir):
    fname = request.param
    arch, shape, seed, input_seed = tc.FIXTURE_SPECS[fname]
    capture, manifest = read_golden(fixtures_dir / "torch" / fname)
    return fname, arch, seed, input_seed, capture, manifest_entry(fixtures_dir, fname)


def test_fixture_is_the_recorded_one(fixture_case, fixtures_dir):
    fname, arch, seed, input_seed, capture, entry = fixture_case
    data = (fixtures_dir / "torch" / fname).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert entry["torch"].startswith("2.") and entry["dtype"] == "float64"
    assert entry["weights_seed"] == seed and entry["input_seed"] == input_seed


def test_weights_and_input_are_rebuilt_bit_for_bit(fixture_case):
    """Our canonical names and shapes equal torch's state_dict keys (else the sha differs),
    and the generator gives the values torch was given."""
    fname, arch, seed, input_seed, capture, entry = fixture_case
    config, _ = OURS[arch]
    weights = tc.make_weights(param_shapes(config), seed)
    assert tc.params_sha256(weights) == entry["weights_sha256"]
    assert np.array_equal(tc.make_input(tuple(entry["input_shape"]), input_seed), capture["input"])


def test_capture_names_repeated_modules_by_call(fixture_case):
    fname, arch, *_ , capture, _ = fixture_case
    names = list(capture)
    if arch == "tiny":                      # torchvision: one ReLU called three times per block
        assert [n for n in names if n.startswith("layer1.0.relu")] == \
            ["layer1.0.relu#1", "layer1.0.relu#2", "layer1.0.relu#3"]
        assert "relu" in names and "avgpool" in names
    else:                                   # timm: act1..3, deep stem conv1.0..6, global_pool
        assert {"conv1.2", "conv1.5", "act1", "layer2.0.act3", "global_pool.flatten"} <= set(names)
        assert "layer2.0.downsample.0" in names
    assert names.index("layer1.0.conv1") < names.index("layer1.0") < names.index("layer1")


def test_dump_matches_torch_at_1e_10_through_the_map(fixture_case):
    fname, arch, seed, input_seed, capture, entry = fixture_case
    ours, _ = our_dump(arch, seed, capture["input"])
    _, map_name = OURS[arch]
    report = compare(ours, capture, rtol=1e-10, atol=0.0, name_map=map_name)
    assert report.passed, report.format(show="fail")
    # every tensor but the additions (torch has no module for `out += identity`) is compared
    assert [r.name for r in report.missing] == [n for n in ours if n.endswith(".add")]
    assert len(report.compared) == len(ours) - len(report.missing)
    worst = max(r.max_rel for r in report.compared)
    assert worst < 1e-13, worst
    if arch == "tiny_d":                    # stage 1's Identity "pool" has no counterpart here
        assert "layer1.0.downsample.0" in report.extra


def test_perturbed_torch_tensor_is_named_first(fixture_case):
    fname, arch, seed, input_seed, capture, entry = fixture_case
    ours, _ = our_dump(arch, seed, capture["input"])
    _, map_name = OURS[arch]
    bad = dict(capture)
    victim = "layer2.0.relu#1" if arch == "tiny" else "layer2.0.act1"
    bad[victim] = capture[victim].copy()
    bad[victim].reshape(-1)[-1] += 1e-7
    bad["fc"] = capture["fc"] + 1e-7        # a later tensor diverges too
    report = compare(ours, bad, rtol=1e-10, atol=0.0, name_map=map_name)
    first = report.first_divergence
    assert not report.passed and first.name == "layer2.0.relu1" and first.candidate_name == victim
    assert f"first in execution order: layer2.0.relu1 (candidate {victim!r})" in report.verdict()


def test_hashed_uniform_properties():
    u = tc.hashed_uniform(0, "conv1.weight", 100_000)
    assert u.dtype == np.float64 and 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.002
    assert np.array_equal(u[10:20], tc.hashed_uniform(0, "conv1.weight", 20)[10:20])
    assert not np.array_equal(u[:50], tc.hashed_uniform(0, "bn1.weight", 50))
    assert not np.array_equal(u[:50], tc.hashed_uniform(1, "conv1.weight", 50))


# --- live lane ---------------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnext50_32x4d", "resnext50d_32x4d"])
def test_live_full_size_models_match_torch(torch, arch):
    capture, weights, facts = tc.run(arch, (1, 3, 64, 64), seed=11, input_seed=12)
    config, map_name = OURS[arch]
    model = nrx.build(config, weights=weights, dtype="float64")
    ours, _ = golden_dump(model, capture["input"])
    report = compare(ours, capture, rtol=1e-10, atol=0.0, name_map=map_name)
    worst = max(report.compared, key=lambda r: r.max_rel)
    print(f"\n{config.name} vs torch {torch.__version__} float64, 1x3x64x64: "
          f"{len(report.compared)} tensors compared, worst max_rel {worst.max_rel:.2e} at {worst.name}")
    assert report.passed, report.format(show="fail")
    assert [r.name for r in report.missing] == [n for n in ours if n.endswith(".add")]


@pytest.mark.torch
@pytest.mark.parametrize("fname", sorted(tc.FIXTURE_SPECS))
def test_live_fixture_is_reproducible(torch, fixtures_dir, fname):
    arch, shape, seed, input_seed = tc.FIXTURE_SPECS[fname]
    capture, _, facts = tc.run(arch, shape, seed, input_seed)
    committed, _ = read_golden(fixtures_dir / "torch" / fname)
    assert list(capture) == list(committed)
    for name in committed:
        np.testing.assert_allclose(capture[name], committed[name], rtol=0, atol=1e-12, err_msg=name)
