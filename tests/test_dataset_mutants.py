"""The mutation audit judged over a set (compare-set's rule on the logits of seeded images):
every non-equivalent bug of the catalogue is caught, the unmutated forward and the equivalent
mutants pass. NumPy only."""

import json

import pytest

from numpy_resnext.archs import custom
from numpy_resnext.dataset.mutation_set import format_set_table, run_mutants_over_set

from _dataset import cli

TINY_VD = custom(depths=(1, 1, 1, 1), cardinality=4, base_width=4, stem="deep", num_classes=10,
                 name="tiny_vd")


@pytest.fixture(scope="module")
def results():
    return run_mutants_over_set(TINY_VD, (67, 45), images=4, dtypes=("float32", "float64"))


def test_every_non_equivalent_mutant_is_caught_over_the_set(results):
    bad = [r for r in results if not r.ok]
    assert not bad, [(r.mutant, r.dtype, r.caught, r.max_rel_max, r.equivalent) for r in bad]
    for dt in ("float32", "float64"):
        rows = [r for r in results if r.dtype == dt and r.mutant != "none"]
        # 30 bugs, the five squeeze-and-excitation ones equivalent on this network without SE
        assert len(rows) == 30 and sum(not r.equivalent for r in rows) >= 23
    none32 = next(r for r in results if r.mutant == "none" and r.dtype == "float32")
    assert none32.top1_agreement == 1.0 and none32.max_rel_max < 1e-5
    floor = next(r for r in results if r.mutant == "avgpool-floor-mode")
    assert floor.stopped and floor.caught                # its forward cannot reach the logits
    table = format_set_table(results)
    for dt in ("float32", "float64"):
        live = sum(not r.equivalent for r in results if r.dtype == dt and r.mutant != "none")
        assert f"{dt}: {live} of {live} non-equivalent mutants caught" in table


def test_audit_set_command():
    code, out, _ = cli("audit", "--mutants", "--set", 2, "--arch", "ResNeXt50_vd_32x4d", "--size", 67, 45,
                       "--dtype", "float32", "--mutant", "fc-bias-dropped", "--mutant", "maxpool-zero-padding",
                       "--json")
    report = json.loads(out)
    assert code == 0 and report["images"] == 2
    verdict = {r["mutant"]: r["caught"] for r in report["results"]}
    assert verdict == {"none": False, "fc-bias-dropped": True, "maxpool-zero-padding": False}
    assert cli("audit", "--set", 2)[0] == 2                 # --set belongs to --mutants


def test_correct_low_precision_candidates_pass_their_defaults():
    """The defaults let a correct float32 / float16 / bfloat16 port pass (emulated: every op's
    result rounded to the format); a float16 port would not pass float32's."""
    from numpy_resnext.dataset.metrics import defaults
    from numpy_resnext.dataset.mutation_set import precision_over_set
    out = precision_over_set(TINY_VD, (67, 45), images=16)
    assert {f: r["pass"] for f, r in out.items()} == {"float32": True, "float16": True, "bfloat16": True}
    assert out["float16"]["max_rel"]["max"] > defaults("float32")["rtol"]       # not a float32 port
