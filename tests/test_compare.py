"""compare: the error definition on hand-made numbers, first divergence in the reference's
order, shapes, NaNs, name maps (patterns, null, conflicts, shipped maps), the command's
exit status and its errors."""

import json
from collections import OrderedDict

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.cli import main
from numpy_resnext.errors import FormatError, InputError
from numpy_resnext.golden import (SHIPPED_MAPS, compare, compare_tensor, golden_dump, load_map,
                                  parse_map, write_golden)

TINY = nrx.custom(depths=(1, 1), cardinality=4, base_width=2, num_classes=10, stem_width=16)


@pytest.fixture(scope="module")
def golden():
    model = nrx.build(TINY, seed=5, dtype="float64")
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32))
    return golden_dump(model, x)


def perturbed(tensors, *names, by=1e-6):
    out = OrderedDict((k, v.copy()) for k, v in tensors.items())
    for name in names:
        out[name].reshape(-1)[3] += by
    return out


# --- the error definition -----------------------------------------------------------------
def test_error_definition_on_hand_made_numbers():
    ref = np.array([0.0, 10.0, -4.0])
    cand = np.array([0.0, 10.5, -4.0])
    row = compare_tensor("t", ref, cand, rtol=0.05, atol=0.0)
    assert row.max_abs == 0.5 and row.ref_abs_max == 10.0
    assert row.max_rel == pytest.approx(0.05, rel=1e-15)
    assert row.status == "pass" and row.worst_index == (1,)           # 0.5 <= 0 + 0.05 * 10
    assert compare_tensor("t", ref, cand, rtol=0.049, atol=0.0).status == "FAIL"
    assert compare_tensor("t", ref, cand, rtol=0.049, atol=0.01).status == "pass"   # 0.5 <= 0.01 + 0.49


def test_norm_wise_not_element_wise():
    """A tiny element with a large element-wise relative error passes if the tensor's error
    is small against its largest value: BN/ReLU outputs are full of near-zeros."""
    ref = np.array([1e-9, 100.0])
    cand = np.array([2e-9, 100.0])
    row = compare_tensor("t", ref, cand, rtol=1e-10, atol=0.0)
    assert row.status == "pass" and row.max_rel == pytest.approx(1e-11)


def test_all_zero_reference_needs_atol():
    ref, cand = np.zeros(4), np.array([0, 0, 1e-13, 0])
    assert compare_tensor("t", ref, cand, rtol=1e-3, atol=0.0).status == "FAIL"
    assert compare_tensor("t", ref, cand, rtol=1e-3, atol=1e-12).status == "pass"
    assert compare_tensor("t", ref, ref.copy(), rtol=0.0, atol=0.0).status == "pass"


def test_nan_in_the_candidate_fails():
    row = compare_tensor("t", np.ones(5), np.array([1, 1, np.nan, 1, 1.0]), rtol=1.0, atol=1.0)
    assert row.status == "FAIL" and "non-finite" in row.note and row.worst_index == (2,)


def test_json_report_is_strict_json_with_a_nan_candidate():
    report = compare(OrderedDict(fc=np.ones(3)), OrderedDict(fc=np.array([1, np.nan, 1])))
    text = json.dumps(report.to_dict())

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")
    row = json.loads(text, parse_constant=refuse)["rows"][0]
    assert row["status"] == "FAIL" and row["max_abs"] is None and "non-finite" in row["note"]


def test_shapes_may_differ_only_by_size_one_axes():
    ref = np.arange(6.0).reshape(2, 3)
    ok = compare_tensor("avgpool", ref, ref.reshape(2, 3, 1, 1), rtol=0, atol=0)
    assert ok.status == "pass" and "size-1" in ok.note
    bad = compare_tensor("avgpool", ref, ref.reshape(3, 2), rtol=1, atol=1)
    assert bad.status == "shape" and "(2, 3)" in bad.note and "(3, 2)" in bad.note


def test_float32_candidate_is_compared_in_float64():
    ref = np.array([1.0 + 1e-9])
    row = compare_tensor("t", ref, ref.astype(np.float32), rtol=1e-10, atol=0)
    assert row.max_abs == pytest.approx(abs(float(np.float32(ref[0])) - ref[0]))


# --- whole dumps ----------------------------------------------------------------------------
def test_identical_dumps_pass(golden):
    tensors, _ = golden
    report = compare(tensors, tensors)
    assert report.passed and report.first_divergence is None
    assert len(report.compared) == len(tensors) and report.rtol == 1e-10


def test_first_divergence_is_named_in_the_references_order(golden):
    tensors, _ = golden
    cand = perturbed(tensors, "layer2.0.conv3", "layer1.0.bn2")
    cand = OrderedDict(reversed(list(cand.items())))     # candidate order must not matter
    report = compare(tensors, cand, rtol=1e-10, atol=0)
    assert not report.passed
    assert report.first_divergence.name == "layer1.0.bn2"
    failing = [r.name for r in report.rows if r.status == "FAIL"]
    # a perturbation does not propagate in a dump: only the two touched tensors differ
    assert failing == ["layer1.0.bn2", "layer2.0.conv3"]
    text = report.format(show="fail")
    assert "first in execution order: layer1.0.bn2" in text and "layer1.0.conv1 " not in text


def test_single_array_candidate_is_compared_as_logits(golden):
    tensors, _ = golden
    report = compare(tensors, tensors["fc"] + 0.0)
    assert report.passed and [r.name for r in report.compared] == ["fc"]
    report = compare(tensors, tensors["fc"][0])                        # (classes,) vs (1, classes)
    assert not report.passed and report.first_divergence.status == "shape"


def test_missing_tensors_and_strict(golden):
    """--strict fails on a missing tensor, except a kind a hook capture cannot hold (the
    adds, the input) when the candidate holds none of it: before, --strict could never pass
    on a hook capture, and said '0 tensor(s) diverge ... input: max_abs nan'."""
    tensors, _ = golden
    some = OrderedDict((k, v) for k, v in tensors.items() if k != "layer2.0.add")
    assert compare(tensors, some).passed
    strict = compare(tensors, some, strict=True)
    assert not strict.passed and strict.first_divergence.name == "layer2.0.add"
    verdict = strict.verdict()
    assert "0 tensor(s) diverge" not in verdict and "max_abs nan" not in verdict
    assert "FAIL: 1 reference tensor not in the candidate (--strict): 1 residual add (layer2.0.add)" in verdict
    hooks = OrderedDict((k, v) for k, v in tensors.items() if not k.endswith(".add") and k != "input")
    strict = compare(tensors, hooks, strict=True)
    assert strict.passed and strict.excused == {"residual add", "input"}
    assert "not held by the capture" in strict.verdict() and "PASS (--strict)" in strict.verdict()
    lacking = OrderedDict((k, v) for k, v in hooks.items() if k != "layer1.0.relu2")
    strict = compare(tensors, lacking, strict=True)
    assert not strict.passed and strict.first_divergence.name == "layer1.0.relu2"


def test_a_partial_pass_says_so_loudly(golden):
    """Before: a PASS over 1 or 127 tensors read like a full one."""
    tensors, _ = golden
    hooks = OrderedDict((k, v) for k, v in tensors.items() if not k.endswith(".add") and "relu" not in k)
    verdict = compare(tensors, hooks).verdict()
    assert "PASS ON 24 OF 31 REFERENCE TENSORS ONLY: not compared: 5 ReLUs (relu, layer1.0.relu1, " \
           "...), 2 residual adds (layer1.0.add, layer2.0.add)" in verdict
    assert "PASS ON 1 OF 31" in compare(tensors, tensors["fc"] + 0.0).verdict()
    assert "PASS: every reference tensor compared" in compare(tensors, tensors).verdict()
    assert compare(tensors, hooks).to_dict()["missing_by_kind"] == {"ReLU": 5, "residual add": 2}


def test_a_hook_without_a_copy_is_recognised(golden):
    """An in-place ReLU overwrote the captured BN output: the candidate's bn1 equals the
    reference's relu1; compare names the BN and says why it holds the ReLU's values."""
    tensors, _ = golden
    cand = OrderedDict(tensors)
    cand["layer1.0.bn1"] = tensors["layer1.0.relu1"]
    report = compare(tensors, cand)
    assert report.first_divergence.name == "layer1.0.bn1"
    assert "equals the reference's later 'layer1.0.relu1'" in report.first_divergence.note
    assert "clone()" in report.verdict()


def test_nothing_in_common_fails(golden):
    tensors, _ = golden
    report = compare(tensors, {"something": np.zeros(3)})
    assert not report.passed and "no tensor in common" in report.verdict()
    assert report.extra == ["something"]


def test_default_tolerance_follows_the_less_precise_dtype(golden):
    tensors, manifest = golden
    cand32 = OrderedDict((k, v.astype(np.float32)) for k, v in tensors.items())
    report = compare(tensors, cand32)
    assert report.rtol == manifest["suggested_tolerances"]["float32"]["rtol"] and report.passed
    assert not compare(tensors, cand32, rtol=1e-10).passed


def test_negative_tolerance_is_refused(golden):
    with pytest.raises(InputError, match="tolerances"):
        compare(golden[0], golden[0], rtol=-1)


# --- name maps --------------------------------------------------------------------------------
def test_map_patterns_exact_null_and_passthrough():
    nm = parse_map({"#": "comment", "layer*.*.relu#1": "layer*.*.relu1", "layer*.*.relu#3": None,
                    "act1": "relu", "layer1.0.relu#1": "special", "global_pool": "avgpool"})
    assert nm.translate("layer3.12.relu#1") == "layer3.12.relu1"
    assert nm.translate("layer1.0.relu#1") == "special"               # exact beats pattern
    assert nm.translate("layer2.0.relu#3") is None
    assert nm.translate("act1") == "relu" and nm.translate("conv1") == "conv1"
    assert nm.translate("layer1.0.relu#12") == "layer1.0.relu#12"     # '#1' is literal, full match
    assert nm.translate("layer.0.relu#1") == "layer.0.relu#1"         # '*' needs one character


def test_map_stars_do_not_cross_dots():
    nm = parse_map({"layer*": None})
    assert nm.translate("layer1") is None and nm.translate("layer1.0") == "layer1.0"


def test_map_conflicts_and_bad_maps_are_clear(tmp_path):
    nm = parse_map({"a": "x", "b": "x"})
    with pytest.raises(FormatError, match="'a' and 'b' both map to 'x' under name map .* hold "
                                          "different values"):
        nm.apply({"a": np.zeros(1), "b": np.ones(1)})
    # the same values twice (a stage output and its last block): kept once, listed
    assert nm.apply({"a": np.zeros((2, 1)), "b": np.zeros(2)})[2] == ["b (= a)"]
    with pytest.raises(FormatError, match="must be an object with a \"#when\" pattern"):
        parse_map({"@fx": {"x": "y"}})
    with pytest.raises(FormatError, match="has 2 '\\*' but its value"):
        parse_map({"layer*.*.x": "*"})
    with pytest.raises(FormatError, match="must be a name or null"):
        parse_map({"a": 3})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FormatError, match="bad.json"):
        load_map(str(tmp_path / "bad.json"))
    with pytest.raises(InputError, match="neither a shipped map"):
        load_map("tensorflow")


def test_shipped_maps_load_by_short_name():
    for name in SHIPPED_MAPS:
        nm = load_map(name)
        assert nm.patterns, name
    tv, pv, timm = load_map("torchvision"), load_map("paddle.vision"), load_map("timm")
    for nm in (tv, pv):
        assert nm.translate("layer4.2.relu#2") == "layer4.2.relu2"
        assert nm.translate("layer4.2") == "layer4.2"
        assert nm.translate("layer1.0.downsample.0") == "layer1.0.downsample.0"
    assert pv.translate("layer4.2.relu#3") is None and pv.translate("layer4") is None
    # torchvision and timm: the block output and stage outputs map (same values kept once)
    assert tv.translate("layer4.2.relu#3") == "layer4.2" and tv.translate("layer4") == "layer4.{last}"
    assert timm.translate("act1") == "relu" and timm.translate("layer3.1.act2") == "layer3.1.relu2"
    assert timm.translate("global_pool") == "avgpool" and timm.translate("layer2.0.act3") == "layer2.0"
    # plain timm models name the 7x7 stem conv and the shortcut conv like torchvision
    assert timm.translate("conv1") == "conv1" and timm.translate("layer1.0.downsample.0") == "layer1.0.downsample.0"


def test_map_renames_a_torch_style_capture(golden):
    tensors, _ = golden
    cand = OrderedDict()
    for name, value in tensors.items():
        if name.endswith(".add"):
            continue                                  # torch has no module for the addition
        cand[name.replace(".relu1", ".relu#1").replace(".relu2", ".relu#2")] = value
    cand["layer1.0.relu#3"] = tensors["layer1.0"]
    cand["avgpool"] = tensors["avgpool"][:, :, None, None]
    report = compare(tensors, cand, name_map="torchvision")
    assert report.passed and report.ignored == ["layer1.0.relu#3 (= layer1.0)"]
    assert [r.name for r in report.missing] == ["layer1.0.add", "layer2.0.add"]
    unmapped = compare(tensors, cand)
    assert "layer1.0.relu1" in [r.name for r in unmapped.missing]
    assert "layer1.0.relu#1" in unmapped.extra


# --- the command ----------------------------------------------------------------------------
def test_compare_command_exit_status_and_json(tmp_path, golden, capsys):
    tensors, manifest = golden
    write_golden(tmp_path / "ref.npz", tensors, manifest)
    write_golden(tmp_path / "same.npz", tensors)
    write_golden(tmp_path / "bad.npz", perturbed(tensors, "layer2.0.bn1", by=1e-3))
    np.save(tmp_path / "logits.npy", tensors["fc"])
    assert main(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "same.npz")]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "logits.npy")]) == 0
    capsys.readouterr()
    rc = main(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "bad.npz"), "--show", "fail",
               "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 1 and "first in execution order: layer2.0.bn1" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["first_divergence"] == "layer2.0.bn1" and report["passed"] is False
    assert main(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "bad.npz"), "--rtol", "1"]) == 0


@pytest.mark.parametrize("args, message", [
    (["{d}/nope.npz", "{d}/ref.npz"], "cannot read the reference: it does not exist"),
    (["{d}/ref.npz", "{d}/nope.npz"], "cannot read the candidate: it does not exist"),
    (["{d}/ref.npz", "{d}/ref.npz", "--map", "nosuchmap"], "neither a shipped map"),
    (["{d}/ref.npz", "{d}/junk.npz"], "neither an .npy array nor an .npz archive"),
    (["{d}/ref.npz", "{d}/ref.npz", "--json", "{d}/no/such/dir/r.json"], "--json"),
])
def test_compare_command_errors_exit_2(tmp_path, golden, capsys, args, message):
    write_golden(tmp_path / "ref.npz", golden[0], golden[1])
    (tmp_path / "junk.npz").write_bytes(b"nonsense")
    assert main(["compare"] + [a.format(d=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_compare_help_defines_the_error_and_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "--map torchvision" in out
    assert "max_abs <= atol + rtol * max |r|" in out


def test_single_array_candidate_lists_only_its_row(tmp_path, golden, capsys):
    """A logits .npy is compared with ``fc`` only: the table has that one row and a count of
    the other reference tensors, not one "missing" row per tensor before the verdict."""
    tensors, manifest = golden
    write_golden(tmp_path / "ref.npz", tensors, manifest)
    np.save(tmp_path / "logits.npy", tensors["fc"])
    n_ref = len(tensors)
    assert main(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "logits.npy")]) == 0
    out = capsys.readouterr().out
    table = out.split("\n(")[0].splitlines()[1:]
    assert [line.split()[0] for line in table] == ["fc"]
    assert "missing" not in out
    assert f"({n_ref - 1} other reference tensors are not in the candidate" in out
    assert "PASS" in out.splitlines()[-1]
    # --strict still names every missing tensor (as failures)
    assert main(["compare", "--strict", str(tmp_path / "ref.npz"), str(tmp_path / "logits.npy")]) == 1
    assert capsys.readouterr().out.count("missing") >= n_ref - 1
    # a many-tensor candidate keeps its per-row listing of what it lacks
    partial = OrderedDict((k, v) for k, v in tensors.items() if not k.endswith(".add"))
    report = compare(tensors, partial)
    assert report.format().count("missing") == len(report.missing) > 0


def test_coverage_names_the_squeeze_and_excitation_tensors_it_did_not_compare():
    """A capture without the SE tensors says so: every SE tensor is of the kind
    "squeeze-and-excitation" (from the plan, and from the names alone); they were once
    counted as "pool" and "tensor"."""
    from numpy_resnext.golden.coverage import plan_kinds, tensor_kinds
    from numpy_resnext.plan import layer_plan
    plan = layer_plan(nrx.get_arch("SE_ResNeXt50_32x4d"))
    se = [n for layer in plan.se_layers() for n in layer.emits]
    assert len(se) == 6 * 16
    kinds = plan_kinds(plan)
    assert {kinds[n] for n in se} == {"squeeze-and-excitation"}
    names = ["layer1.0.se.pool", "layer1.0.se.fc1", "layer1.0.se.act", "layer1.0.se.gate",
             "layer1.0.se", "layer1.0.se_module.fc2", "maxpool", "layer1.0.bn3"]
    assert [tensor_kinds(names)[n] for n in names] == ["squeeze-and-excitation"] * 6 + ["pool", "BatchNorm"]
