"""Live lane: full-size models built by real Paddle, saved in every layout, loaded here.

For each model, ``reference/paddle_models.py one`` runs in a fresh process (PaddleClas's
fixed ParamAttr names allow one model per process): it builds the published class,
draws random weights with trained-looking BatchNorm (``--bn trained``: convolution
channels scaled by 2**k so BN variances reach down to eps, statistics calibrated layer by
layer), saves ``.pdparams`` (structured keys + table), a per-parameter directory
(ParamAttr names) and ``jit.save`` files (``.pdiparams`` + ``.json``), and records
Paddle's float32 and float64 logits, every block output, each block's grouped-conv output
and projection shortcut, the max-pool and the average pool, at odd input sizes with batch
2. This file then loads each layout with numpy_resnext (no Paddle involved) and compares:

  float64: max |numpy - paddle| / max |paddle| <= 1e-10, logits and every intermediate
  float32: the same ratio <= 1e-5, and the same top-1 for every sample

The float64 bound holds only with Paddle's BatchNorm epsilon, float32(1e-5), which a load
through a Paddle naming sets: run with 1e-5 instead, the same weights miss it.

The full float64 + float32 forward with intermediates runs once per model (on the
.pdparams weights); every other layout must load bit-identical tensors and give float64
logits within the same bound. Skips with a reason when Paddle is not installed.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numpy_resnext.archs import PADDLE_BN_EPS, TORCH_BN_EPS, get_arch
from numpy_resnext.io import load_weights
from numpy_resnext.model import build

from _arrays import rel_err
from _scratch import scratch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "reference" / "paddle_models.py"
BATCH = 2
# float32: compare's suggested tolerance. Trained-looking BN divides channels whose variance
# is near eps by about 3e-3, which amplifies float32 rounding in both implementations alike:
# numpy-resnext's and Paddle's float32 forwards differ by 3e-5..7e-5 at worst (random BN with
# variances 0.5-1.5 gave 1-2e-6), each about as far from Paddle's float64 as from the other
TOL64, TOL32 = 1e-10, 1e-4

# (PaddleClas model file or paddle.vision, model function, registry entry the file must
# infer to, input H x W: odd, so stride-2 layers and the vd ceil-mode pool meet odd sizes)
MODELS = [
    ("resnext", "ResNeXt101_32x4d", "ResNeXt101_32x4d", "67x45"),
    ("resnext_vd", "ResNeXt50_vd_64x4d", "ResNeXt50_vd_64x4d", "75x53"),   # C=64 widths
    ("resnext101_wsl", "ResNeXt101_32x8d_wsl", "ResNeXt101_32x8d_wsl", "45x67"),
    ("vision", "resnext50_64x4d", "ResNeXt50_64x4d", "53x59"),
]


@pytest.fixture(scope="module", params=MODELS, ids=[m[1] for m in MODELS])
def made(request, paddle, tmp_path_factory):
    kind, model, arch, size = request.param
    if kind != "vision" and importlib.util.find_spec("paddleclas") is None:
        pytest.skip("PaddleClas model files are not installed: pip install --no-deps paddleclas==2.6.0")
    with scratch(tmp_path_factory, model) as out:
        cmd = [sys.executable, str(SCRIPT), "one", "--kind", kind, "--model", model,
               "--out", str(out), "--size", size, "--batch", str(BATCH), "--bn", "trained"]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        assert res.returncode == 0, res.stderr[-3000:]
        meta = json.loads((out / f"{model}.json").read_text())
        golden = dict(np.load(out / meta["golden"]))
        reference = load_weights(out / meta["files"]["pdparams"])
        yield dict(out=out, meta=meta, golden=golden, reference=reference,
                   arch=get_arch(arch).replace(bn_eps=PADDLE_BN_EPS))    # Paddle's files: Paddle's epsilon


def test_pdparams_infers_the_architecture_and_matches_paddle(made):
    loaded, golden = made["reference"], made["golden"]
    assert loaded.config == made["arch"], (loaded.config, made["arch"])
    report = []
    for dtype, tol in (("float64", TOL64), ("float32", TOL32)):
        key = "64" if dtype == "float64" else "32"
        names = [k.split("/", 1)[1] for k in golden if k.startswith(f"f{key}/")]
        assert len(names) >= 20, names            # every block output at least
        model = build(loaded.config, weights=loaded.params, dtype=dtype)
        logits, inter = model(golden["x"].astype(dtype), keep=names)
        assert logits.dtype == np.dtype(dtype)
        errs = {n: rel_err(inter[n], golden[f"f{key}/{n}"]) for n in names}
        errs["logits"] = rel_err(logits, golden[f"logits{key}"])
        worst = max(errs, key=errs.get)
        report.append(f"{dtype}: worst {worst} {errs[worst]:.2e}, logits {errs['logits']:.2e}")
        if dtype == "float32" and worst != "logits":   # each float32 forward against Paddle's float64
            f64 = golden[f"f64/{worst}"]
            report.append(f"against float64 at {worst}: ours {rel_err(inter[worst], f64):.2e}, "
                          f"Paddle's {rel_err(golden[f'f32/{worst}'], f64):.2e}")
        assert errs[worst] <= tol, (dtype, worst, errs[worst])
        if dtype == "float32":
            np.testing.assert_array_equal(logits.argmax(1), golden["logits32"].argmax(1))
    print(f"{made['meta']['model']} pdparams: " + "; ".join(report))


@pytest.mark.parametrize("layout", ["dir", "infer", "table"])
def test_every_layout_loads_the_same_tensors(made, layout):
    meta, ref = made["meta"], made["reference"]
    if layout == "table":
        # the same .pdparams read through its StructuredToParameterName@@ table
        from numpy_resnext.io import read_paddle
        pf = read_paddle(made["out"] / meta["files"]["pdparams"])
        source = {pf.structured_to_param[k]: v for k, v in pf.tensors.items()}
        if meta["kind"] == "vision":
            # paddle.vision's parameter names come from a per-process counter (conv2d_0.w_0):
            # they cannot be mapped, and the error must say so and point to the state-dict keys
            from numpy_resnext.errors import WeightsError
            with pytest.raises(WeightsError, match="generated per process.*paddle.save"):
                load_weights(source)
            return
    else:
        if layout not in meta["files"]:
            pytest.skip(f"{meta['kind']} models have no {layout} layout here "
                        "(paddle.vision parameter names are generated per process)")
        source = made["out"] / meta["files"][layout]
    loaded = load_weights(source)
    assert loaded.scheme != ref.scheme
    assert loaded.config == made["arch"]
    assert list(loaded.params) == list(ref.params)
    for name, value in ref.params.items():
        assert loaded.params[name].dtype == value.dtype, name
        np.testing.assert_array_equal(loaded.params[name], value, err_msg=name)
    model = build(loaded.config, weights=loaded.params, dtype="float64")
    err = rel_err(model(made["golden"]["x"]), made["golden"]["logits64"])
    print(f"{meta['model']} {layout} ({loaded.scheme}): float64 logits {err:.2e}")
    assert err <= TOL64


def test_float64_agreement_needs_paddles_epsilon(made):
    """The same weights run with torch's 1e-5 instead of Paddle's float32(1e-5) miss the
    float64 bound: trained-looking BN (variances down to eps) makes the difference show."""
    loaded, golden = made["reference"], made["golden"]
    errors = {}
    for eps in (PADDLE_BN_EPS, TORCH_BN_EPS):
        model = build(loaded.config, weights=loaded.params, dtype="float64", bn_eps=eps)
        errors[eps] = rel_err(model(golden["x"]), golden["logits64"])
    print(f"{made['meta']['model']}: float64 logits {errors[PADDLE_BN_EPS]:.1e} with Paddle's epsilon, "
          f"{errors[TORCH_BN_EPS]:.1e} with 1e-5")
    assert errors[PADDLE_BN_EPS] <= TOL64 < errors[TORCH_BN_EPS]


def test_named_architecture_that_disagrees_is_refused(made):
    from numpy_resnext.errors import WeightsError
    other = "ResNeXt50_32x4d" if made["arch"].name != "ResNeXt50_32x4d" else "ResNeXt101_32x4d"
    with pytest.raises(WeightsError, match="disagrees"):
        load_weights(made["out"] / made["meta"]["files"]["pdparams"], arch=other)
