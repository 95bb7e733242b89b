"""The mutation audit: every non-equivalent port bug of the catalogue is caught by compare at
the default tolerances, with the first divergence at the tensor where the bug lives; the
unmutated forward passes; equivalent mutants pass; goldens from a seed are bit-reproducible."""

import json

import numpy as np
import pytest

from numpy_resnext import build
from numpy_resnext.archs import custom
from numpy_resnext.cli import main
from numpy_resnext.golden import golden_dump
from numpy_resnext.golden.catalogue import CATALOGUE, MUTANTS
from numpy_resnext.golden.mutants import hard_sigmoid, paddle_linear_reshaped, tf_same_pads, to_bfloat16
from numpy_resnext.golden.mutation_audit import audit_image, prepare, run_mutants, summary

TINY_VD = custom(depths=(1, 1, 1, 1), cardinality=4, base_width=4, stem="deep", num_classes=10,
                 name="tiny_vd")
TINY_RESNET = custom(depths=(1, 1, 1, 1), cardinality=1, base_width=16, stem="plain", num_classes=10,
                     name="tiny_resnet")
# squeeze-and-excitation with reduction 12: C / 12 is not whole (256 / 12 = 21.3), so
# rounding it up (22) or down (21) differs, which no published model shows (C / 16 is whole)
TINY_SE = custom(depths=(1, 1, 1, 1), cardinality=4, base_width=4, stem="deep", num_classes=10,
                 se_reduction=12, name="tiny_se")
SE_MUTANTS = {"se-hard-sigmoid", "se-after-add", "se-squeeze-max", "se-linear-not-transposed",
              "se-width-rounded-other-way"}


def check(results, min_live):
    bad = [r for r in results if not r.ok]
    assert not bad, "\n".join(f"{r.mutant} {r.dtype}: caught={r.caught} first={r.first} "
                              f"expected={r.expected} equivalent={r.equivalent} {r.note}" for r in bad)
    for dt, s in summary(results).items():
        assert s["unmutated_passes"]
        assert s["non_equivalent"] >= min_live, (dt, s)
        assert s["caught"] == s["located"] == s["non_equivalent"]


@pytest.fixture(scope="module")
def tiny_vd_results():
    return run_mutants(TINY_VD, (67, 45), "calibrated", ("float32", "float64"))


def test_tiny_vd_every_mutant_caught_at_its_tensor(tiny_vd_results):
    check(tiny_vd_results, min_live=23)
    by = {(r.mutant, r.dtype): r for r in tiny_vd_results}
    # the declared tensors, written out: the first BN, the first grouped conv, layer2.0's
    # 1x1, the first strided conv with an even size (17x12 at layer2.0), the vd pool
    assert by["bn-eps-outside-sqrt", "float32"].first == "conv1.1"
    assert by["grouped-conv-interleaved", "float32"].first == "layer1.0.conv2"
    assert by["stride-on-conv1", "float32"].first == "layer2.0.conv1"
    assert by["tf-same-padding", "float32"].first == "layer2.0.conv2"
    assert by["avgpool-full-window", "float64"].first == "layer2.0.downsample.0"
    assert by["input-bgr", "float64"].first == "input"
    assert by["fc-bias-dropped", "float32"].first == "fc"
    assert "forward stopped" in by["avgpool-floor-mode", "float32"].note
    # equivalent by construction: run, and they pass (the SE bugs: no SE layer here)
    assert {r.mutant for r in tiny_vd_results if r.equivalent} == {"maxpool-zero-padding",
                                                                   "avgpool-count-include-pad"} | SE_MUTANTS


def test_real_architecture_float32_default_weights():
    """The acceptance criterion: ResNeXt50_vd_32x4d, calibrated seeded weights, float32 at
    rtol 1e-4, >= 15 non-equivalent mutants, each first divergence at the bug."""
    check(run_mutants("ResNeXt50_vd_32x4d", (67, 45), "calibrated", ("float32",)), min_live=15)


def test_identity_bn_weights_miss_eps_bugs():
    """The old weights are weak: at float32 the eps bugs are not found at all; the calibrated
    weights find them at the first BN (above). (The dropped fc bias: see test_cli_mutants.)"""
    names = ["bn-eps-outside-sqrt", "bn-no-eps", "bn-variance-as-std"]
    results = run_mutants(TINY_VD, (67, 45), "identity-bn", ("float32",), names=names)
    assert all(not r.caught for r in results)


def test_plain_resnet_lists_group_and_pool_mutants_as_equivalent():
    results = run_mutants(TINY_RESNET, (67, 45), "calibrated", ("float32",))
    check(results, min_live=18)
    eq = {r.mutant: r.equivalent for r in results if r.equivalent}
    assert set(eq) == {"grouped-conv-interleaved", "maxpool-zero-padding", "avgpool-count-include-pad",
                       "avgpool-full-window", "avgpool-floor-mode", "vd-shortcut-without-pool"} | SE_MUTANTS
    assert "cardinality 1" in eq["grouped-conv-interleaved"]


def test_even_sizes_catch_other_padding_bugs():
    """64x64: every strided layer sees even sizes. 'SAME' padding now shows at the stem's
    first conv; ceil and floor mode agree, so the floor-mode pool bug is invisible."""
    names = ["tf-same-padding", "avgpool-floor-mode", "avgpool-full-window"]
    by = {r.mutant: r for r in run_mutants(TINY_VD, (64, 64), "calibrated", ("float64",), names=names)}
    assert by["tf-same-padding"].first == "conv1.0" and by["tf-same-padding"].ok
    assert by["avgpool-floor-mode"].equivalent and not by["avgpool-floor-mode"].caught
    assert by["avgpool-full-window"].equivalent and not by["avgpool-full-window"].caught


def test_catalogue_is_documented_and_named_once():
    assert len(MUTANTS) == len(CATALOGUE) >= 20
    for m in CATALOGUE:
        assert m.bug and m.kind in {"bn", "conv", "pool", "block", "input", "precision", "head", "se"}
        assert sum(x is not None for x in (m.ops, m.plan, m.prepare)) == 1, m.name


def test_tf_same_pads_by_hand():
    # TensorFlow's rule: out = ceil(in / s), total = max((out-1)*s + k - in, 0), extra pixel after
    assert tf_same_pads(224, 7, 2) == (2, 3)
    assert tf_same_pads(225, 7, 2) == (3, 3)
    assert tf_same_pads(56, 3, 2) == (0, 1)
    assert tf_same_pads(57, 3, 2) == (1, 1)
    assert tf_same_pads(56, 1, 2) == (0, 0)


def test_bfloat16_rounding_by_hand():
    e = 2.0 ** -8                                     # half an ulp of bfloat16 at 1
    a = np.array([1 + e, 1 + 3 * e, 1 + 1.5 * e, -(1 + 3 * e), 3.0], dtype=np.float64)
    assert to_bfloat16(a).tolist() == [1.0, 1 + 4 * e, 1 + 2 * e, -(1 + 4 * e), 3.0]   # ties to even
    assert to_bfloat16(a).dtype == np.float64


def test_bfloat16_rounding_matches_torch(torch):
    x = np.random.default_rng(0).standard_normal(10_000).astype(np.float32) * 1e3
    expected = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
    assert np.array_equal(to_bfloat16(x), expected)


def test_golden_from_a_seed_is_bit_reproducible():
    """Two builds and dumps from the same seed (calibration run twice) give identical sha256
    manifests."""
    image = audit_image(45, 37, seed=3)
    manifests = []
    for _ in range(2):
        model = build("ResNeXt50_32x4d", seed=3, dtype="float64")
        _, manifest = golden_dump(model, prepare(image, "float64")[None])
        manifests.append(([(t["name"], t["sha256"]) for t in manifest["tensors"]],
                          manifest["weights"]["params_sha256"]))
    assert manifests[0] == manifests[1]
    assert len(manifests[0][0]) == 1 + len(model.plan.names())


def test_cli_mutants(capsys):
    args = ["audit", "--mutants", "--arch", "ResNeXt50_32x4d", "--size", "67", "45", "--dtype", "float32",
            "--mutant", "fc-bias-dropped", "--mutant", "bn-eps-outside-sqrt"]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["float32"]["located"] == 2
    rows = {r["mutant"]: r for r in out["results"]}
    assert rows["fc-bias-dropped"]["first"] == "fc" and rows["bn-eps-outside-sqrt"]["first"] == "bn1"
    assert main(args + ["--init", "identity-bn", "--json"]) == 1     # the old weights miss them
    rows = {r["mutant"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert rows["fc-bias-dropped"]["caught"] is False and rows["bn-eps-outside-sqrt"]["located"] is False


def test_cli_mutant_options_need_mutants(capsys):
    assert main(["audit", "--arch", "ResNeXt50_32x4d"]) == 2
    assert "only with --mutants" in capsys.readouterr().err
    assert main(["audit", "--mutants", "--mutant", "no-such-bug"]) == 2
    assert "unknown mutant" in capsys.readouterr().err


def test_int8_quantise_by_hand():
    from numpy_resnext.golden.precision import quantise
    a = np.array([[1.0, -0.5, 0.2], [0.0, 0.0, 0.0]])
    s = 1 / 127
    assert np.allclose(quantise(a), np.array([[127, -64, 25], [0, 0, 0]]) * s, rtol=0, atol=1e-15)
    assert np.array_equal(quantise(a, axis=0)[1], np.zeros(3))        # an all-zero row stays zero


def test_precision_profile_orders_the_formats():
    from numpy_resnext.golden.precision import precision_profile
    p = precision_profile(TINY_VD, (33, 29))
    assert p["float32"]["worst"] < 1e-5                                # within the float32 tolerance
    assert 1e-4 < p["float16"]["worst"] < p["bfloat16"]["worst"] < p["int8"]["worst"] < 1
    assert set(p["bfloat16"]) >= {"stem", "layer1", "layer4", "avgpool", "logits"}


def test_tiny_se_every_se_bug_caught_at_its_tensor():
    """The five SE port bugs, each caught by compare at the SE tensor where it lives, in
    float32 and float64; the other bugs are still caught with SE layers in the blocks."""
    results = run_mutants(TINY_SE, (67, 45), "calibrated", ("float32", "float64"))
    check(results, min_live=28)
    by = {(r.mutant, r.dtype): r for r in results}
    for dt in ("float32", "float64"):
        assert by["se-hard-sigmoid", dt].first == "layer1.0.se.gate"
        assert by["se-after-add", dt].first == "layer1.0.se.pool"
        assert by["se-squeeze-max", dt].first == "layer1.0.se.pool"
        assert by["se-linear-not-transposed", dt].first == "layer1.0.se.fc1"
        r = by["se-width-rounded-other-way", dt]
        # the port's reduce has 22 outputs where the library's has 21 (256 / 12 truncated)
        assert r.first == "layer1.0.se.fc1" and "reference (1, 21), candidate (1, 22)" in r.note
    assert not any(r.equivalent for r in results if r.mutant in SE_MUTANTS)


def test_published_se_widths_hide_the_rounding_bug():
    """On a published SE-ResNeXt (r = C / 16 = 16 ... 128, whole) rounding up or down agrees:
    the audit lists that bug as equivalent and runs it; the other four SE bugs are caught."""
    names = sorted(SE_MUTANTS)
    results = run_mutants("seresnext26d_32x4d", (35, 29), "calibrated", ("float32",), names=names)
    check(results, min_live=4)
    eq = {r.mutant: r.equivalent for r in results if r.equivalent}
    assert set(eq) == {"se-width-rounded-other-way"} and "whole number" in eq["se-width-rounded-other-way"]


def test_se_bug_helpers_by_hand():
    x = np.array([-4.0, -3.0, -1.0, 0.0, 1.0, 3.0, 5.0])
    assert hard_sigmoid(x).tolist() == [0.0, 0.0, 2 / 6, 0.5, 4 / 6, 1.0, 1.0]
    w = np.arange(6.0).reshape(2, 3, 1, 1)                 # out 2, in 3
    bad = paddle_linear_reshaped(w)                         # Paddle's (3, 2) read as (2, 3)
    assert bad.shape == w.shape and bad[:, :, 0, 0].tolist() == [[0.0, 3.0, 1.0], [4.0, 2.0, 5.0]]
