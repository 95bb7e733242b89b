"""Live lane: every SE-ResNeXt of the registry against its framework's own model, in float64.

For each model of tests/_se_oracle.py (PaddleClas 2.6.0 on Paddle 3.3.1: SE_ResNeXt50_32x4d,
SE_ResNeXt101_32x4d, SE_ResNeXt152_64x4d, SE_ResNeXt50_vd_32x4d, SENet154_vd; timm 1.0.31 on
torch 2.13.0: seresnext26d/26t/50/101/101_32x8d/101_64x4d/101d and the three legacy SENet
models) the framework builds the model, draws random weights with trained-looking BatchNorm
(variances down to eps), runs it in float64 on an odd-sized input and records every module's
output. Here the weights are loaded as a user would load them, with no framework involved:

- Paddle: the .pdparams that paddle.save wrote (structured keys and the ParamAttr table) and
  the files paddle.jit.save wrote (the ParamAttr names), both read here;
- timm: the state_dict under timm's names (resnet.py, or senet.py's for the legacy models);

the architecture and BatchNorm epsilon are inferred from them (Paddle's float32(1e-5) for
Paddle's files; seresnext101d_32x8d, whose tensors seresnextaa101d_32x8d shares, is refused
until named), and the logits and every intermediate the framework exposes (with the
shipped name maps ``timm`` and ``senet``; PaddleClas's layers mapped through the plan) must
agree to 1e-10 (max |numpy - framework| / max |framework|). 101- and 152-layer models run
at 2x3x37x35, the others at 2x3x67x45. Skips without the frameworks.
"""

import re

import numpy as np
import pytest

import _se_oracle as so
from _arrays import rel_err
from _scratch import scratch
import numpy_resnext as nrx
from numpy_resnext import build
from numpy_resnext.archs import PADDLE_BN_EPS, TORCH_BN_EPS, get_arch
from numpy_resnext.errors import WeightsError
from numpy_resnext.golden import compare, golden_dump
from numpy_resnext.golden import load_map
from numpy_resnext.io import load_weights
from numpy_resnext.io.infer import TWINS
from numpy_resnext.params import count_params

TOL = 1e-10
DEEP = ("101", "152", "154")


def shape_for(name):
    return (2, 3, 37, 35) if any(d in name for d in DEEP) else so.SHAPE


@pytest.fixture(scope="module", params=list(so.MODELS))
def run(request, tmp_path_factory):
    name = request.param
    framework = so.MODELS[name][0]
    so.need(framework)
    with scratch(tmp_path_factory, name) as save:
        yield _run(name, framework, save if framework == "paddle" else None)


def _run(name, framework, save):
    o = so.oracle(name, shape_for(name), save_dir=save)
    source = o.files["pdparams"] if framework == "paddle" else o.params
    if name in TWINS:        # seresnextaa101d_32x8d has the same tensors: the file must say which
        with pytest.raises(WeightsError, match=f"{name} and of {TWINS[name][0]}.*name the architecture"):
            load_weights(source)
        loaded = load_weights(source, arch=name)
    else:
        loaded = load_weights(source)
    model = build(loaded.config, weights=loaded.params, dtype="float64")
    logits, acts = model.forward(o.x, keep=True)
    return dict(name=name, framework=framework, oracle=o, loaded=loaded, model=model,
                logits=logits, acts=acts)


def test_the_file_is_the_named_model_with_its_sources_epsilon(run):
    o, loaded = run["oracle"], run["loaded"]
    expected = get_arch(run["name"])                     # timm's names of PaddleClas models: aliases
    assert loaded.config.name == expected.name
    assert loaded.config.bn_eps == (PADDLE_BN_EPS if run["framework"] == "paddle" else TORCH_BN_EPS)
    assert count_params(run["model"].plan) == so.trainable_count(o)
    assert len(loaded.params) == len(o.params)


def paddle_name(key, plan):
    """Our name for a PaddleClas sublayer output (BN layers there apply their ReLU)."""
    if m := re.match(r"^bb_(\d+)_(\d+)(:add|\..*)?$", key):
        b = plan.block(f"layer{int(m.group(1)) + 1}.{m.group(2)}")
        table = {None: b.name, ":add": b.add, ".conv0._conv": b.conv1.name, ".conv0._batch_norm": b.conv1.relu,
                 ".conv1._conv": b.conv2.name, ".conv1._batch_norm": b.conv2.relu,
                 ".conv2._conv": b.conv3.name, ".conv2._batch_norm": b.conv3.bn}
        if b.se is not None:
            se = b.se
            table.update({".scale": se.name, ".scale.pool2d_gap": se.pool, ".scale.squeeze": se.fc1.name,
                          ".scale.relu": se.relu, ".scale.excitation": se.fc2.name,
                          ".scale.sigmoid": se.gate})
        if b.projection is not None:
            table.update({".short._conv": b.projection.name, ".short._batch_norm": b.projection.bn})
            if b.projection.pool is not None:
                table[".short._pool2d_avg"] = b.projection.pool.name
        return table.get(m.group(3))
    stem = {"pool2d_max": plan.stem_pool.name, "pool2d_avg": plan.head.pool, "out": plan.head.fc}
    if len(plan.stem) == 1:
        stem.update({"conv._conv": plan.stem[0].name, "conv._batch_norm": plan.stem[0].relu})
    else:
        for k, layer in enumerate(plan.stem):
            stem.update({f"conv1_{k + 1}._conv": layer.name, f"conv1_{k + 1}._batch_norm": layer.relu})
    return stem.get(key)


def our_name(run, key):
    plan = run["model"].plan
    if run["framework"] == "paddle":
        return paddle_name(key, plan)
    legacy = run["name"].startswith("legacy_")
    if not legacy and key == "global_pool.flatten":
        return plan.head.pool
    return load_map("senet" if legacy else "timm").translate(key)


def test_logits_and_every_intermediate_agree(run):
    o, acts = run["oracle"], run["acts"]
    errors = {"logits": rel_err(run["logits"], o.logits)}
    for key, theirs in o.tensors.items():
        name = our_name(run, key)
        if name is None or name not in acts:
            continue
        ours = acts[name]
        assert ours.size == theirs.size, (key, name, ours.shape, theirs.shape)
        errors[name] = rel_err(ours.reshape(theirs.shape), theirs)
    plan = run["model"].plan
    se_names = {n for se in plan.se_layers() for n in se.emits}
    assert se_names <= set(errors), sorted(se_names - set(errors))[:5]     # every SE tensor compared
    blocks = {b.name for b in plan.blocks} | {b.add for b in plan.blocks}
    assert blocks <= set(errors), sorted(blocks - set(errors))[:5]
    worst = max(errors, key=errors.get)
    print(f"{run['name']} ({o.framework}): {len(errors)} tensors, logits {errors['logits']:.1e}, "
          f"worst {worst} {errors[worst]:.1e}")
    assert errors[worst] <= TOL, (worst, errors[worst])


def test_paddles_other_files_load_the_same_model(run, tmp_path):
    """jit.save's files (ParamAttr names) load as the same architecture and the same
    tensors; the structured keys without paddle.save's table cannot tell SENet154_vd from
    SE_ResNeXt152_64x4d, and the load says so instead of guessing."""
    if run["framework"] != "paddle":
        pytest.skip("Paddle files only")
    o, ref = run["oracle"], run["loaded"]
    jit = load_weights(o.files["jit"])
    assert jit.scheme == "ppcls_se_param" and jit.config == ref.config
    for name, value in ref.params.items():
        np.testing.assert_array_equal(jit.params[name], value, err_msg=name)
    bare = dict(o.params)                                        # structured keys, no table
    if "152" in run["name"] or "154" in run["name"]:
        with pytest.raises(WeightsError, match="SENet154_vd and of SE_ResNeXt152_64x4d.*name the architecture"):
            load_weights(bare)
        assert load_weights(bare, arch=run["name"]).config == ref.config
    else:
        assert load_weights(bare).config == ref.config


@pytest.mark.parametrize("name", ["seresnext26t_32x4d", "legacy_seresnext26_32x4d"])
def test_torch_capture_of_timms_se_model_compares_with_no_map(name, tmp_path):
    """nrx.torch_capture on timm's own SE model (the oracle's weights) gives every tensor of
    the golden under its name (the squeeze as fc1's input; legacy SENet through the senet
    map), and compare --strict passes at float64's tolerance."""
    so.need("timm")
    import torch                                              # optional: the oracle's framework
    o = so.oracle(name, (2, 3, 37, 35))
    model = so.timm_module().create_model(name, pretrained=False).double().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in o.params.items()}, strict=False)
    captured = nrx.torch_capture(model, o.x)
    ours = build(name, weights=load_weights(o.params).params, dtype="float64")     # timm's or senet's names
    golden, _ = golden_dump(ours, o.x)
    report = compare(golden, captured, rtol=TOL, atol=0.0, strict=True)
    assert report.passed, report.format(show="fail")
    assert {n for se in ours.plan.se_layers() for n in se.emits} <= {r.name for r in report.compared}
    worst = max(report.compared, key=lambda r: r.max_rel)
    print(f"{name}: torch_capture, {len(report.compared)} tensors, worst {worst.name} {worst.max_rel:.1e}")
