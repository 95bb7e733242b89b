"""Real Paddle models saved in every weight layout, with golden logits and intermediates.

Needs paddlepaddle==3.3.1 and the PaddleClas model files from ``pip install --no-deps
paddleclas==2.6.0`` (their one project import, ``load_dygraph_pretrain``, is stubbed).
PaddleClas fixes ParamAttr names, so one process holds one such model: every command here
builds exactly one model.

Each model gets random weights *and* random BatchNorm running statistics (drawn in float64
from ``numpy.random.default_rng(seed)``, stored as float32 like published weights), so BN
is really exercised. The float32 model runs as stored; the float64 goldens come from
``model.to(dtype='float64')`` of the same weights (exact). Outputs, in ``--out DIR``:

  <stem>.pdparams                 paddle.save(state_dict): structured keys + the
                                  StructuredToParameterName@@ table
  <stem>_params/                  one tensor record per parameter, named by ParamAttr name
                                  (legacy ``<Name>_pretrained.tar`` layout), ParamAttr models only
  <stem>_infer.pdiparams/.json    paddle.jit.save (PIR program + combined parameters)
  <stem>_golden.npz               x (float64), logits64, logits32, and ``f64/<name>``,
                                  ``f32/<name>`` for each captured intermediate (canonical names)
  <stem>.json                     model, config, seed, sizes, paddle version, files

Commands:
  python reference/paddle_models.py fixtures --out reference/fixtures/paddle   (all tiny fixtures)
  python reference/paddle_models.py one --kind resnext --model ResNeXt101_32x4d --out DIR
         [--size 67x45 --batch 2 --seed 0 --formats pdparams,dir,infer --capture all
          --bn random|trained]
  python reference/paddle_models.py names --kind resnext --model ResNeXt101_32x4d
         (prints the state_dict's keys, parameter names and shapes as JSON; no weights)
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import types
from collections import OrderedDict

import numpy as np

KINDS = ("vision", "resnext", "resnext_vd", "resnext101_wsl")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                               # _manifest
from _manifest import atomic_write, file_entry, manifest_key, save_npz, update_manifest, write_bytes  # noqa: E402


# --- building models --------------------------------------------------------------------
def ppcls_module(kind):
    """PaddleClas's model file for ``kind`` loaded from the installed wheel, import stubbed."""
    spec = importlib.util.find_spec("paddleclas")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("paddleclas is not installed: pip install --no-deps paddleclas==2.6.0")
    zoo = os.path.join(list(spec.submodule_search_locations)[0], "ppcls", "arch", "backbone", "model_zoo")
    for pkg in ("ppcls", "ppcls.utils", "ppcls.arch", "ppcls.arch.backbone", "ppcls.arch.backbone.model_zoo"):
        if pkg not in sys.modules:
            mod = types.ModuleType(pkg)
            mod.__path__ = []
            sys.modules[pkg] = mod
    stub = types.ModuleType("ppcls.utils.save_load")
    stub.load_dygraph_pretrain = lambda *a, **k: None       # we never load published weights
    stub.load_dygraph_pretrain_from_url = lambda *a, **k: None
    sys.modules["ppcls.utils.save_load"] = stub
    name = f"ppcls.arch.backbone.model_zoo.{kind}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(zoo, f"{kind}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def full_model(kind, model, class_num=1000):
    """A full-size model: a PaddleClas function name, or a paddle.vision.models function."""
    if kind == "vision":
        import paddle.vision.models as models
        return getattr(models, model)(num_classes=class_num)
    return getattr(ppcls_module(kind), model)(class_num=class_num)


def tiny_model(kind):
    """(model, canonical ArchConfig fields) of a small net built from the real classes.

    The published classes fix four stages of 256..2048 output channels (PaddleClas fixes
    50/101/152 layers and 32x4d/64x4d too), which is tens of MB of weights. The tiny nets
    keep only stage 1 and a new head; every remaining layer is the library's own code and
    forward, with the library's own names.
    """
    import paddle
    import paddle.nn as nn
    if kind == "vision":
        from paddle.vision.models.resnet import BottleneckBlock, ResNet
        model = ResNet(BottleneckBlock, depth=50, width=4, groups=4, num_classes=5)
        model.layer1 = model.layer1[:2]          # layer1.0 (projection) and layer1.1
        model.layer2 = nn.Identity()
        model.layer3 = nn.Identity()
        model.layer4 = nn.Identity()
        model.fc = nn.Linear(256, 5)
        return model, dict(depths=(2,), cardinality=4, base_width=4, stem="plain", num_classes=5)
    if kind in ("resnext", "resnext_vd"):
        model = ppcls_module(kind).ResNeXt(layers=50, cardinality=32, class_num=7)
        keep = 1
        for name in [n for n in model._sub_layers if n.startswith("bb_")]:
            s, i = map(int, name[3:].split("_"))
            if s > 0 or i >= keep:
                del model._sub_layers[name]
        model.block_list = model.block_list[:keep]
        model.pool2d_avg_channels = 256
        model.out = _named_linear(256, 7, "fc_weights", "fc_offset")
        return model, dict(depths=(1,), cardinality=32, base_width=4,
                           stem="plain" if kind == "resnext" else "deep", num_classes=7)
    if kind == "resnext101_wsl":
        model = ppcls_module(kind).ResNeXt101WSL(cardinality=32, width=8, class_num=6)
        for name in list(model._sub_layers):
            if re.match(r"^_conv\d+_\d+$", name) and name != "_conv1_0":
                setattr(model, name, nn.Identity())
        model._out = _named_linear(256, 6, "fc.weight", "fc.bias")
        return model, dict(depths=(1,), cardinality=32, base_width=8, stem="plain", num_classes=6)
    raise SystemExit(f"unknown kind {kind!r}; expected one of {KINDS}")


def _named_linear(fan_in, fan_out, weight_name, bias_name):
    """A Linear whose parameters carry PaddleClas's ParamAttr names.

    The original head already holds those names in this process, so the new parameters
    are created unnamed and renamed (dygraph allows it; state_dict's table follows)."""
    import paddle.nn as nn
    lin = nn.Linear(fan_in, fan_out)
    lin.weight.name, lin.bias.name = weight_name, bias_name
    return lin


def randomize_trained(model, seed, calibration):
    """Random weights with trained-looking BatchNorm, the recipe of tests/_se_oracle.py:
    convolutions He-normal with every output channel times 2**k (k in -9..1), so the
    variances BN sees span six decades and more, down to eps; BN scale of both signs; BN
    running statistics calibrated in one eval forward over ``calibration`` (float64 N, C, H,
    W), each set by a pre-hook from the BN's actual input just before it runs, then moved a
    little. Linear: U(+-1/sqrt(fan_in)). Drawn in float64, stored in the model's dtype."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    import _se_oracle as so
    rng = np.random.default_rng(seed)
    dtype = None
    for key, p in model.state_dict().items():
        shape, dtype = tuple(p.shape), str(p.dtype).replace("paddle.", "")
        if len(shape) == 4:
            v = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
            v *= np.ldexp(1.0, rng.integers(-9, 2, shape[0]))[:, None, None, None]
        elif len(shape) == 2:
            v = rng.uniform(-1, 1, shape) / np.sqrt(shape[0])
        elif key.endswith(("_variance", "running_var")):
            v = np.ones(shape)                                 # calibrated below
        elif key.endswith(("_mean", "running_mean")):
            v = np.zeros(shape)
        elif key.endswith(".weight"):                          # BN scale
            v = rng.choice((-1.0, 1.0), shape) * rng.uniform(0.2, 0.6, shape)
        else:
            v = rng.uniform(-0.5, 0.5, shape)
        p.set_value(v.astype(dtype))
    so.calibrate_paddle(model, seed, calibration, dtype)


def randomize(model, seed):
    """Random weights and random BN statistics, drawn in float64, stored in the model's dtype.

    Conv: He-normal. BN scale U(0.2, 0.6) (keeps 100-block nets finite), offset N(0, 0.1),
    mean N(0, 0.1), variance U(0.5, 1.5). Linear: U(+-1/sqrt(fan_in)). Order: state_dict.
    (The committed fixtures use this; the live lane uses :func:`randomize_trained`.)
    """
    rng = np.random.default_rng(seed)
    for key, p in model.state_dict().items():
        shape = tuple(p.shape)
        if len(shape) == 4:
            v = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif len(shape) == 2:
            v = rng.uniform(-1, 1, shape) / np.sqrt(shape[0])
        elif key.endswith(("_variance", "running_var")):
            v = rng.uniform(0.5, 1.5, shape)
        elif key.endswith(("_mean", "running_mean")):
            v = rng.normal(0, 0.1, shape)
        elif key.endswith(".weight"):          # BN scale (the head's bias is 1-D too)
            v = rng.uniform(0.2, 0.6, shape)
        else:
            v = rng.normal(0, 0.1, shape)
        p.set_value(v.astype(str(p.dtype).replace("paddle.", "")))


# --- intermediates ----------------------------------------------------------------------
def _hook_names(kind, model, config):
    """{Paddle sublayer name: canonical intermediate name} for the layers worth comparing."""
    from numpy_resnext.plan import layer_plan
    import paddle.nn as nn
    plan = layer_plan(config)
    out = {}
    for name, layer in model.named_sublayers():
        canon = None
        if isinstance(layer, nn.Identity):     # stages cut away from a tiny net
            continue
        if kind == "vision":
            if re.match(r"^layer\d+\.\d+(\.bn2)?$", name) or name in ("maxpool", "avgpool", "fc"):
                canon = name
            elif m := re.match(r"^(layer\d+\.\d+)\.downsample$", name):
                canon = f"{m.group(1)}.downsample.1"
        elif kind in ("resnext", "resnext_vd"):
            if m := re.match(r"^bb_(\d+)_(\d+)(\.conv1|\.short)?$", name):
                block = f"layer{int(m.group(1)) + 1}.{m.group(2)}"
                role = m.group(3)
                canon = (block if role is None else f"{block}.relu2" if role == ".conv1"
                         else plan.block(block).projection.bn)
            else:
                canon = {"pool2d_max": "maxpool", "pool2d_avg": "avgpool", "out": "fc"}.get(name)
        else:
            if m := re.match(r"^_conv(\d+)_(\d+)(\._conv1|\._short\._conv)?$", name):
                block = f"layer{m.group(1)}.{m.group(2)}"
                canon = {None: block, "._conv1": f"{block}.relu2",
                         "._short._conv": f"{block}.downsample.1"}[m.group(3)]
            else:
                canon = {"_pool": "maxpool", "_avg_pool": "avgpool", "_out": "fc"}.get(name)
        if canon:
            out[name] = canon
    return out


def run_with_capture(model, x, hooks, keep=None):
    """(logits, {canonical name: array}) of one eval forward; avgpool flattened to (N, C)."""
    import paddle
    got, handles = OrderedDict(), []
    layers = dict(model.named_sublayers())
    for pname, canon in hooks.items():
        if keep is not None and canon not in keep:
            continue
        def hook(layer, inputs, output, canon=canon):
            got[canon] = output.numpy().reshape(output.shape[0], -1) if canon == "avgpool" \
                else output.numpy()
        handles.append(layers[pname].register_forward_post_hook(hook))
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x)).numpy()
    for h in handles:
        h.remove()
    return logits, got


# --- saving -----------------------------------------------------------------------------
def save_formats(model, out, stem, formats, x_shape):
    """Write the weights in each of ``formats``; returns {format: relative path}."""
    import paddle
    files = {}
    if "pdparams" in formats:
        paddle.save(model.state_dict(), os.path.join(out, f"{stem}.pdparams"))
        files["pdparams"] = f"{stem}.pdparams"
    if "dir" in formats:
        from paddle.base import core
        d = os.path.join(out, f"{stem}_params")
        os.makedirs(d, exist_ok=True)
        for p in model.state_dict().values():
            core.save_dense_tensor(p.value().get_tensor(), os.path.join(d, p.name))
        files["dir"] = f"{stem}_params"
    if "infer" in formats:
        spec = [paddle.static.InputSpec([None, 3, x_shape[2], x_shape[3]], "float32", "x")]
        paddle.jit.save(model, os.path.join(out, f"{stem}_infer"), input_spec=spec)
        files["infer"] = f"{stem}_infer"
    return files


def make_one(kind, model_name, out, stem=None, size=(67, 45), batch=2, seed=0,
             formats=("pdparams", "dir", "infer"), capture=None, tiny=False, bn="random"):
    """Build, randomise, save and run one model; writes the files listed in the docstring."""
    import paddle
    from numpy_resnext.archs import custom, get_arch
    os.makedirs(out, exist_ok=True)
    paddle.set_device("cpu")
    paddle.seed(seed)
    if tiny:
        model, fields = tiny_model(kind)
        config = custom(name=f"tiny_{kind}", **fields)
    else:
        model = full_model(kind, model_name)
        config = get_arch(model_name)
    model.eval()
    rng = np.random.default_rng(seed + 1)
    x64 = rng.standard_normal((batch, 3, size[0], size[1]))
    if bn == "trained":
        randomize_trained(model, seed, rng.standard_normal(x64.shape))
    else:
        randomize(model, seed)
    stem = stem or model_name
    if kind == "vision":
        # paddle.vision's parameter names come from a per-process counter (conv2d_0.w_0):
        # only the .pdparams (structured keys) says which tensor is which
        formats = [f for f in formats if f == "pdparams"]
    files = save_formats(model, out, stem, formats, x64.shape)
    hooks = _hook_names(kind, model, config)
    keep = None if capture in (None, "all") else set(capture)
    logits32, inter32 = run_with_capture(model, x64.astype("float32"), hooks, keep)
    model.to(dtype="float64")
    logits64, inter64 = run_with_capture(model, x64, hooks, keep)
    golden = {"x": x64, "logits64": logits64, "logits32": logits32}
    golden.update({f"f64/{k}": v for k, v in inter64.items()})
    golden.update({f"f32/{k}": v for k, v in inter32.items()})
    save_npz(os.path.join(out, f"{stem}_golden.npz"), golden, compressed=True)
    meta = dict(kind=kind, model=model_name, tiny=tiny, config=_config_dict(config), seed=seed, bn=bn,
                input_shape=list(x64.shape), paddle=paddle.__version__, files=files,
                golden=f"{stem}_golden.npz", intermediates=sorted(inter64))
    write_bytes(os.path.join(out, f"{stem}.json"), json.dumps(meta, indent=1).encode())
    return meta


def _config_dict(config):
    d = config.to_dict()
    d["depths"] = list(d["depths"])
    return d


def names(kind, model_name):
    """[[state_dict key, parameter name, shape], ...] of a full-size model (nothing allocated)."""
    import paddle
    with paddle.LazyGuard():
        model = full_model(kind, model_name)
    return [[k, p.name, list(p.shape)] for k, p in model.state_dict().items()]


# --- the committed fixtures -------------------------------------------------------------
TINY = [("vision", "tiny_vision", ("pdparams",)),
        ("resnext", "tiny_resnext", ("pdparams", "dir")),
        ("resnext_vd", "tiny_resnext_vd", ("pdparams", "infer")),
        ("resnext101_wsl", "tiny_wsl", ("pdparams",))]
TINY_SIZE, TINY_BATCH = (19, 15), 2
TINY_CAPTURE = ("maxpool", "layer1.0.relu2", "layer1.0", "avgpool")

# full-size name lists: every depth, both cardinalities, every family
NAME_MODELS = [("resnext", "ResNeXt50_32x4d"), ("resnext", "ResNeXt101_64x4d"),
               ("resnext", "ResNeXt152_32x4d"), ("resnext_vd", "ResNeXt50_vd_64x4d"),
               ("resnext_vd", "ResNeXt101_vd_32x4d"), ("resnext_vd", "ResNeXt152_vd_64x4d"),
               ("resnext101_wsl", "ResNeXt101_32x8d_wsl"), ("resnext101_wsl", "ResNeXt101_32x48d_wsl"),
               ("vision", "resnext50_32x4d"), ("vision", "resnext101_64x4d"),
               ("vision", "resnext152_32x4d")]


def _sub(args):
    """Run this script in a fresh process (one PaddleClas model per process)."""
    cmd = [sys.executable, os.path.abspath(__file__)] + args
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return res.stdout


def make_fixtures(out):
    """Every committed fixture, and its entries in reference/fixtures/MANIFEST.json (versions,
    seeds, sha256 and size of each file) when ``out`` is under reference/fixtures/."""
    import paddle
    os.makedirs(out, exist_ok=True)
    for kind, stem, formats in TINY:
        _sub(["one", "--tiny", "--kind", kind, "--model", stem, "--out", out, "--formats",
              ",".join(formats), "--size", f"{TINY_SIZE[0]}x{TINY_SIZE[1]}", "--batch",
              str(TINY_BATCH), "--capture", ",".join(TINY_CAPTURE)])
    all_names = OrderedDict()
    for kind, model in NAME_MODELS:
        all_names[model] = dict(kind=kind, tensors=json.loads(_sub(["names", "--kind", kind, "--model", model])))

    def write_names(tmp):                              # header names the file, not the tmp
        with open(tmp, "wb") as f, gzip.GzipFile("names.json.gz", "wb", fileobj=f) as gz, \
                io.TextIOWrapper(gz) as text:
            json.dump(all_names, text, separators=(",", ":"))
    atomic_write(os.path.join(out, "names.json.gz"), write_names, mode=0o644)
    spec = importlib.util.find_spec("paddleclas")
    return record(out, paddle=paddle.__version__,
                  paddleclas="2.6.0 (model files from the wheel, installed --no-deps)" if spec else None,
                  numpy=np.__version__)


def fixture_facts(rel, paddle, paddleclas, numpy):
    """What made one fixture file: script, versions, seeds (names.json.gz draws nothing)."""
    facts = dict(script="reference/paddle_models.py", command="python reference/paddle_models.py fixtures",
                 paddle=paddle, paddleclas=paddleclas, numpy=numpy)
    if rel == "names.json.gz":
        return dict(facts, seed=None, random=False,
                    what="state_dict keys, parameter names and shapes of full-size models (LazyGuard)",
                    name_lists=[m for _, m in NAME_MODELS])
    return dict(facts, seed=0, input_seed=1, input_size=list(TINY_SIZE), batch=TINY_BATCH,
                what="tiny first-stage models with random weights and BN statistics; goldens "
                     "from Paddle in float64 and float32")


def record(out, **versions):
    """Replace this directory's entries in the shared MANIFEST (prefix = its path there)."""
    prefix = manifest_key(out)
    files = sorted(os.path.join(root, fn) for root, _, fns in os.walk(out) for fn in fns)
    if prefix is None:
        print(f"{out} is outside reference/fixtures: MANIFEST.json left alone", file=sys.stderr)
        return {os.path.relpath(p, out): dict(bytes=os.path.getsize(p)) for p in files}
    entries = {}
    for p in files:
        rel = os.path.relpath(p, out).replace(os.sep, "/")
        entries[f"{prefix}/{rel}"] = file_entry(p, **fixture_facts(rel, **versions))
    update_manifest(prefix + "/", entries, replace=True)
    return entries


def main(argv=None):
    sys.path.insert(0, os.path.dirname(HERE))          # numpy_resnext from this checkout
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("--out", default=os.path.join(HERE, "fixtures", "paddle"))
    o = sub.add_parser("one")
    o.add_argument("--kind", choices=KINDS, required=True)
    o.add_argument("--model", required=True)
    o.add_argument("--out", required=True)
    o.add_argument("--tiny", action="store_true")
    o.add_argument("--size", default="67x45")
    o.add_argument("--batch", type=int, default=2)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--formats", default="pdparams,dir,infer")
    o.add_argument("--capture", default="all")
    o.add_argument("--bn", choices=("random", "trained"), default="random",
                   help="BN statistics: random (variances 0.5-1.5), or trained-looking (calibrated, down to eps)")
    n = sub.add_parser("names")
    n.add_argument("--kind", choices=KINDS, required=True)
    n.add_argument("--model", required=True)
    a = p.parse_args(argv)
    if a.cmd == "fixtures":
        m = make_fixtures(a.out)
        print(f"{len(m)} files, {sum(v['bytes'] for v in m.values()):,} bytes")
    elif a.cmd == "one":
        h, w = map(int, a.size.split("x"))
        capture = None if a.capture == "all" else a.capture.split(",")
        meta = make_one(a.kind, a.model, a.out, size=(h, w), batch=a.batch, seed=a.seed,
                        formats=a.formats.split(","), capture=capture, tiny=a.tiny, bn=a.bn)
        print(json.dumps(meta))
    else:
        print(json.dumps(names(a.kind, a.model)))


if __name__ == "__main__":
    main()
