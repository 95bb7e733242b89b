"""The layer plan is the one source of every layer's hyperparameters.

The forward, the backward, the shape walk, the parameter shapes and the weight-file name
units all read :func:`numpy_resnext.plan.layer_plan`; these tests check that they agree
with it by construction, for every built-in architecture and custom ones (the CIFAR stem
included), by recording what the forward and the backward actually call.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext import grad, walk
from numpy_resnext.archs import ARCHS, custom
from numpy_resnext.ops.conv import conv2d_backward
from numpy_resnext.ops.im2col import conv_output_size
from numpy_resnext.io.schemes import units
from numpy_resnext.model import ResNeXt
from numpy_resnext.params import param_shapes
from numpy_resnext.plan import PAPER_STAGE_NAMES, layer_plan
from numpy_resnext.shapes import check_input_size, min_input_size, output_shapes, shape_walk

CUSTOM = [custom(depths=(1, 2), cardinality=2, base_width=4, stem=stem, num_classes=3,
                 stem_width=8, deep_stem_width=4, name=f"tiny_{stem}")
          for stem in ("plain", "deep", "cifar")]
CONFIGS = list(ARCHS.values()) + CUSTOM
PACKAGE = Path(nrx.__file__).resolve().parent


class ZeroParams(dict):
    """Every canonical tensor as a read-only view of one zero: a 828M-parameter model costs
    no memory, and each name still gets its own array object."""

    def __missing__(self, name):
        shape = param_shapes(self.plan)[name]
        self[name] = np.broadcast_to(np.zeros((), np.float32), shape)
        return self[name]


def _zero_model(config):
    params = ZeroParams()
    params.plan = layer_plan(config)
    return ResNeXt(params.plan, params, np.float32)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_the_forward_runs_exactly_the_plans_convolutions(config, monkeypatch):
    """Every conv2d the forward calls gets the weight, stride, padding and groups of the
    plan's layer with that name, in the plan's order (the conv itself is replaced by one
    that returns zeros of the output-size law's shape, so the 32x48d model runs in ms)."""
    model = _zero_model(config)
    names = {id(model.params[f"{layer.name}.weight"]): layer.name for layer in model.plan.convs()}
    calls = []

    def fake_conv2d(x, weight, stride=1, padding=0, groups=1):
        calls.append((names[id(weight)], x.shape[1], weight.shape, stride, padding, groups))
        N, _, H, W = x.shape
        K, _, R, S = weight.shape
        return np.zeros((N, K, conv_output_size(H, R, stride, padding),
                         conv_output_size(W, S, stride, padding)), x.dtype)
    monkeypatch.setattr(walk, "conv2d", fake_conv2d)
    least = min_input_size(model.plan)                       # the smallest input (see below)
    logits = model(np.zeros((1, 3, least, least), np.float32))
    expected = [(c.name, c.in_channels, c.weight_shape, c.stride, c.padding, c.groups)
                for c in model.plan.convs()]
    assert calls == expected
    assert logits.shape == (1, config.num_classes)


@pytest.mark.parametrize("config", CUSTOM + [ARCHS["ResNeXt50_vd_32x4d"]], ids=lambda c: c.name)
def test_the_backward_differentiates_exactly_the_plans_convolutions(config, monkeypatch):
    model = nrx.build(config, dtype="float64", seed=1)
    names = {id(model.params[f"{c.name}.weight"]): c.name for c in model.plan.convs()}
    calls = {}

    def recording(dout, x, weight, stride=1, padding=0, groups=1):
        calls[names[id(weight)]] = (x.shape[1], weight.shape, stride, padding, groups)
        return conv2d_backward(dout, x, weight, stride, padding, groups)
    monkeypatch.setattr(grad, "conv2d_backward", recording)
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 2))
    grad.gradients(model, x, np.ones((1, config.num_classes)))
    assert calls == {c.name: (c.in_channels, c.weight_shape, c.stride, c.padding, c.groups)
                     for c in model.plan.convs()}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_shapes_parameters_and_name_units_read_the_same_plan(config):
    plan = layer_plan(config)
    rows = output_shapes(config, 64, 64)
    assert [r["name"] for r in rows] == plan.names()
    by_name = {r["name"]: r for r in rows}
    shapes = param_shapes(config)
    for c in plan.convs():
        assert shapes[f"{c.name}.weight"] == c.weight_shape
        assert by_name[c.name]["groups"] == c.groups and by_name[c.name]["shape"][0] == c.out_channels
        assert shapes[f"{c.bn}.running_var"] == (c.out_channels,)
    for se in plan.se_layers():
        assert shapes[f"{se.fc1.name}.weight"] == (se.reduced, se.channels, 1, 1) == se.fc1.weight_shape
        assert shapes[f"{se.fc2.name}.weight"] == (se.channels, se.reduced, 1, 1) == se.fc2.weight_shape
        assert by_name[se.fc1.name]["shape"] == (se.reduced,) and by_name[se.name]["shape"][0] == se.channels
    assert [(u.conv, u.bn) for u in units(config)] == [(c.name, c.bn) for c in plan.convs()]
    # conv + 4 BN tensors each, 2 weights and 2 biases per SE layer, fc
    assert len(shapes) == 5 * len(plan.convs()) + 4 * len(plan.se_layers()) + 2
    assert len(plan.se_layers()) == (len(plan.blocks) if config.se_reduction else 0)
    assert plan.block_input(plan.blocks[0]) == plan.stem_output


def test_the_real_forward_emits_the_plans_names_with_the_shape_walks_shapes():
    for config in CUSTOM:
        model = nrx.build(config, dtype="float64")
        _, acts = model.forward(np.ones((2, 3, 13, 11)), keep=True)
        rows = output_shapes(config, 13, 11)
        assert list(acts) == model.plan.names() == [r["name"] for r in rows]
        for r in rows:
            assert acts[r["name"]].shape[1:] == tuple(r["shape"]), r["name"]


def test_cifar_stem_has_no_max_pool_and_keeps_the_resolution():
    plan = layer_plan(CUSTOM[2])
    assert plan.stem_pool is None and "maxpool" not in plan.names()
    (stem,) = plan.stem
    assert (stem.kernel, stem.stride, stem.padding) == (3, 1, 1)
    rows = {r["name"]: r["shape"] for r in output_shapes(CUSTOM[2], 8, 8)}
    assert rows["relu"] == (8, 8, 8) and rows["layer1.0"][1:] == (8, 8) and rows["layer2.0"][1:] == (4, 4)


def test_stop_before_returns_the_blocks_input():
    model = nrx.build(CUSTOM[0], dtype="float64")
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32))
    _, acts = model.forward(x, keep=True)
    for b in model.plan.blocks:
        assert np.array_equal(model.forward(x, stop_before=b.name), acts[model.plan.block_input(b)])
    with pytest.raises(nrx.InputError, match="has no block 'layer9.0'"):
        model.forward(x, stop_before="layer9.0")


def test_keep_selects_intermediates_in_execution_order():
    model = nrx.build(CUSTOM[0], dtype="float64")
    x = np.ones((1, 3, 32, 32))
    _, a = model.forward(x, keep=["layer1.*"])
    assert list(a) == [n for n in model.plan.names() if n.startswith("layer1.")]
    assert list(a)[0] == "layer1.0.conv1"


def test_stage_numbering_is_the_layer_numbering():
    plan = layer_plan("ResNeXt50_32x4d")
    assert [b.layer for b in plan.blocks if b.index == 0] == [1, 2, 3, 4]
    assert {b.layer: b.name.split(".")[0] for b in plan.blocks} == {1: "layer1", 2: "layer2", 3: "layer3", 4: "layer4"}
    assert [PAPER_STAGE_NAMES[n] for n in (1, 2, 3, 4)] == ["conv2", "conv3", "conv4", "conv5"]
    assert plan.block("layer2.0").stage == 1                            # the 0-based index, kept


# modules that only run ops: their functions' defaults are the ops' own API, not a layer's
OP_MODULES = {"plan.py", "naive.py", "conv.py", "im2col.py", "pooling.py", "batchnorm.py", "activations.py",
              "linear.py"}
# the mutation audit's port bugs change a layer's hyperparameters on purpose (each is a
# deliberately wrong variant of the plan's layer, made from it with _replace or an op override)
MUTATION_MODULES = {"mutants.py", "catalogue.py"}
# paper/minimal.py writes the whole network out in one file on purpose, independent of the
# plan (the learner's one file; tests/test_minimal.py holds it equal to the plan's network)
STANDALONE_MODULES = {"minimal.py"}


def _literal_hyperparameters(tree):
    """(line, name) of every literal stride / padding / groups / kernel / pooling mode in
    code: a call's keyword argument or a parameter's default (docstrings and comments are
    prose, not code, and are not looked at)."""
    found = []
    for node in ast.walk(tree):
        pairs = []
        if isinstance(node, ast.Call):
            pairs = [(k.arg, k.value) for k in node.keywords]
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args.args[len(node.args.args) - len(node.args.defaults):]
            pairs = [(a.arg, d) for a, d in zip(args, node.args.defaults)]
            pairs += [(a.arg, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d]
        found += [(v.lineno, k) for k, v in pairs
                  if k in HYPERPARAMETERS and isinstance(v, ast.Constant) and isinstance(v.value, (int, bool))]
    return found


HYPERPARAMETERS = {"stride", "padding", "groups", "kernel", "ceil_mode", "exclusive"}


def test_no_layer_hyperparameter_is_written_outside_the_plan():
    """Outside plan.py (and the op modules' signatures) no code passes a literal stride,
    padding, kernel, group count or pooling mode: it reads them from the plan."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name in OP_MODULES | MUTATION_MODULES | STANDALONE_MODULES:
            continue
        for line, name in _literal_hyperparameters(ast.parse(path.read_text())):
            offenders.append(f"{path.relative_to(PACKAGE)}:{line}: {name}=<literal>")
    assert not offenders, "hyperparameters written outside the plan:\n" + "\n".join(offenders)


def test_the_hyperparameter_check_finds_a_literal():
    """The check above can fail: it finds a literal in code, and not in a docstring."""
    code = 'def f(x):\n    """uses stride=2 in prose"""\n    return conv2d(x, w, stride=2, padding=p)\n'
    assert _literal_hyperparameters(ast.parse(code)) == [(3, "stride")]


ALL_CONFIGS = [ARCHS[n] for n in ARCHS] + CUSTOM + [custom(depths=(1, 1, 1), stem="cifar"),
                                                 custom(depths=(2, 1), stem="deep", cardinality=2)]


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: c.name)
def test_every_plan_runs_on_its_smallest_input(config):
    """Why check_input_size needs only the stem's least size: every layer after the stem
    pads enough that a 1x1 input leaves at least a 1x1 output everywhere (a stride, kernel
    or padding change that broke this would fail here). Every stem runs on 1x1 but the
    legacy SENet one (its max-pool has no padding), which needs 3x3."""
    plan = layer_plan(config)
    least = min_input_size(plan)
    assert least == (3 if config.stem_pool == "ceil" else 1)
    shapes = []
    shape_walk(plan, least, least, emit=lambda name, v: shapes.append((name, v.shape)))
    assert len(shapes) == len(plan.names())
    assert all(min(s) >= 1 for _, s in shapes), [(n, s) for n, s in shapes if min(s) < 1][:3]
    with pytest.raises(nrx.InputError, match=f"at least {least}x{least}"):
        check_input_size(plan, least - 1, least)


def test_an_empty_spatial_size_is_refused_with_the_sizes():
    model = nrx.build(CUSTOM[0], dtype="float64")
    with pytest.raises(nrx.InputError, match="spatial size 0x5 is too small.*at least 1x1"):
        model(np.zeros((1, 3, 0, 5)))


def test_build_makes_the_plan_once(monkeypatch):
    """The plan is made once per model and handed down: init, calibration, the parameter
    shapes and the checks read that one plan instead of rebuilding it from the config."""
    import numpy_resnext.model as model_module
    import numpy_resnext.plan as plan_module
    calls = []
    real = plan_module.layer_plan

    def counting(arch):
        calls.append(arch)
        return real(arch)
    monkeypatch.setattr(model_module, "layer_plan", counting)
    monkeypatch.setattr(plan_module, "layer_plan", counting)
    config = CUSTOM[0]
    for kwargs in (dict(seed=0), dict(seed=0, init="identity-bn"),
                   dict(weights=dict(nrx.init_params(layer_plan(config))))):
        calls.clear()
        model = nrx.build(config, dtype="float64", **kwargs)
        assert len(calls) == 1, kwargs
        assert model.plan.config == config
