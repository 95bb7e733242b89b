"""The Paddle half of tests/_se_oracle.py: one PaddleClas SE model per process.

PaddleClas fixes every parameter's ParamAttr name, so a second model in the same process
collides with the first; tests/_se_oracle.py runs this file as a script, once per model::

    python tests/_se_paddle.py oracle se_resnext SE_ResNeXt50_32x4d OUT.npz 2x3x67x45 0
    python tests/_se_paddle.py counts se_resnext_vd SENet154_vd OUT.json [declared]
    python tests/_se_paddle.py jit se_resnext_vd SE_ResNeXt50_vd_32x4d OUT_DIR

``oracle`` writes an .npz with the input, the state_dict (float64, structured keys), the
logits and every captured tensor, and a JSON ``meta`` entry (orders, ParamAttr names, SE
roles, seconds, notes); given a directory and formats ("pdparams,jit"), it also saves the
model there as Paddle saves it (:func:`save`). ``counts`` writes parameter counts, MACs at 224x224 and the
state_dict's names and shapes (``declared``: SE_ResNeXt152_64x4d as PaddleClas declares it,
whose forward fails, so without MACs). ``jit`` saves the model with paddle.jit.save.

The model files come from the installed PaddleClas wheel (installed --no-deps), loaded by
reference/paddle_models.py's ``ppcls_module`` with its one project import stubbed.

PaddleClas 2.6.0's SE_ResNeXt152_64x4d cannot run its own forward: its three-conv stem ends in
128 channels, but the first block's 1x1 conv and projection are declared with 64 input
channels. ``repair_152`` (used only for that model, and recorded in the notes) replaces those
two convolutions by ones with 128 inputs under the same ParamAttr names.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import _se_oracle as so  # noqa: E402


def ppcls_module(kind):
    spec = importlib.util.spec_from_file_location("paddle_models", ROOT / "reference" / "paddle_models.py")
    pm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pm)
    return pm.ppcls_module(kind)


def repair_152(model):
    """SE_ResNeXt152_64x4d: bb_0_0's conv0 and short take the stem's 128 channels."""
    import paddle.nn as nn                                    # optional: the oracle's framework
    block = model.bb_0_0
    for layer in (block.conv0, block.short):
        name = layer._conv.weight.name                        # conv4_1_x1_weights, conv4_1_prj_weights
        # the old parameter still holds the ParamAttr name in this process: the new one is
        # created unnamed and renamed (dygraph allows it; state_dict's table follows)
        conv = nn.Conv2D(128, layer._conv._out_channels, 1, bias_attr=False)
        conv.weight.name = name
        layer._conv = conv
    return ["bb_0_0.conv0._conv and bb_0_0.short._conv rebuilt with 128 input channels (the stem's "
            "output); PaddleClas 2.6.0 declares 64 and its own forward fails"]


def build(kind, fn, repair=True):
    import paddle                                             # optional: the oracle's framework
    paddle.set_device("cpu")
    model = getattr(ppcls_module(kind), fn)(class_num=1000)
    notes = repair_152(model) if fn == "SE_ResNeXt152_64x4d" and repair else []
    return model.eval(), notes


def _entries(model):
    import paddle.nn as nn                                    # optional: the oracle's framework
    entries = []
    for mname, m in model.named_sublayers():
        if isinstance(m, nn.Conv2D):
            entries.append((f"{mname}.weight", tuple(m.weight.shape), "conv", "out_in"))
        elif isinstance(m, nn.BatchNorm):
            last = "_last" if so._role_of(mname, "bn") == "bn_last" else ""
            c = m.weight.shape[0]
            entries += [(f"{mname}.weight", (c,), f"bn{last}_weight", "out_in"),
                        (f"{mname}.bias", (c,), f"bn{last}_bias", "out_in"),
                        (f"{mname}._mean", (c,), "mean", "out_in"),
                        (f"{mname}._variance", (c,), "var", "out_in")]
        elif isinstance(m, nn.Linear):
            role = so._role_of(mname, "linear")
            entries += [(f"{mname}.weight", tuple(m.weight.shape), f"{role}_weight", "in_out"),
                        (f"{mname}.bias", tuple(m.bias.shape), f"{role}_bias", "in_out")]
    return entries


def randomize(model, seed, calibration):
    """draw()'s weights; running statistics calibrated on ``calibration`` and moved a little,
    each set by a pre-hook just before its BN runs (see tests/_se_oracle.py)."""
    sd = model.state_dict()
    values = so.draw(_entries(model), seed)
    assert set(values) == set(sd), sorted(set(values) ^ set(sd))[:5]
    for k, v in values.items():
        sd[k].set_value(v)
    so.calibrate_paddle(model, seed, calibration)


def se_blocks(model):
    from paddle import nn                                     # optional: the oracle's framework
    out = OrderedDict()
    for name, m in model.named_sublayers():
        if hasattr(m, "scale") and isinstance(m.scale, nn.Layer) and hasattr(m, "conv2"):
            s = f"{name}.scale"
            out[name] = OrderedDict(input=f"{name}.conv2._batch_norm", pool=f"{s}.pool2d_gap",
                                    reduce=f"{s}.squeeze", relu=f"{s}.relu", expand=f"{s}.excitation",
                                    gate=f"{s}.sigmoid", scale=s, add=f"{name}:add", out=name)
    return out


def capture(module, model, x, blocks):
    """(logits, tensors): every leaf sublayer, block and SE layer output; each block's add is
    recorded by wrapping the ``F.relu`` its forward calls after ``paddle.add``."""
    import paddle                                             # optional: the oracle's framework
    import paddle.nn.functional as F
    tensors, handles, current = OrderedDict(), [], []
    wanted = set(blocks) | {b["scale"] for b in blocks.values()}

    def record(key, value):
        assert key not in tensors, f"{key} called twice"
        tensors[key] = value.numpy().copy()

    class _RecordingF:                                        # the model file's ``F``
        def __getattr__(self, attr):
            return getattr(F, attr)

        def relu(self, y, *a, **k):
            record(f"{current[-1]}:add", y)
            return F.relu(y, *a, **k)

    for name, m in model.named_sublayers():
        if next(iter(m.children()), None) is None or name in wanted:
            handles.append(m.register_forward_post_hook(lambda _m, _i, out, n=name: record(n, out)))
        if name in blocks:
            handles.append(m.register_forward_pre_hook(lambda _m, _i, n=name: current.append(n)))
    saved, module.F = module.F, _RecordingF()
    try:
        with paddle.no_grad():
            logits = model(paddle.to_tensor(x)).numpy()
    finally:
        module.F = saved
        for h in handles:
            h.remove()
    return logits, tensors


def save(model, fn, shape, save_dir, formats):
    """The oracle's model as files: ``pdparams`` (paddle.save of the state_dict: structured keys
    and the StructuredToParameterName@@ table) and ``jit`` (paddle.jit.save: the ParamAttr names)."""
    import paddle                                             # optional: the oracle's framework
    if "pdparams" in formats:
        paddle.save(model.state_dict(), str(Path(save_dir) / f"{fn}.pdparams"))
    if "jit" in formats:
        spec = [paddle.static.InputSpec([None, 3, shape[2], shape[3]], "float64", "x")]
        paddle.jit.save(model, str(Path(save_dir) / f"{fn}_infer"), input_spec=spec)


def oracle(kind, fn, out, shape, seed, save_dir="", formats=""):
    import paddle                                             # optional: the oracle's framework
    start = time.perf_counter()
    paddle.seed(seed)
    model, notes = build(kind, fn)
    model.to(dtype="float64")
    x, calibration = so.inputs(shape, seed)
    randomize(model, seed, calibration)
    blocks = se_blocks(model)
    logits, tensors = capture(ppcls_module(kind), model, x, blocks)
    if save_dir:
        save(model, fn, shape, save_dir, formats.split(","))
    sd = model.state_dict()
    params = OrderedDict((k, v.numpy().astype(np.float64)) for k, v in sd.items())
    trainable = [k for k, v in sd.items() if not v.stop_gradient]
    meta = dict(framework=f"paddle {paddle.__version__}, PaddleClas 2.6.0 ({kind}.py)", model=fn,
                params=list(params), trainable=trainable, param_names={k: v.name for k, v in sd.items()},
                tensors=list(tensors), se=[[b, list(r.items())] for b, r in blocks.items()],
                seconds=time.perf_counter() - start, notes=notes)
    arrays = {"x": x, "logits": logits, "meta": np.array(json.dumps(meta))}
    arrays.update({f"params/{k}": v for k, v in params.items()})
    arrays.update({f"tensors/{k}": v for k, v in tensors.items()})
    np.savez(out, **arrays)


def counts(kind, fn, out, declared=""):
    """Parameters (trainable, BN statistics), MACs at 1x3x224x224 from the layers' shapes, the
    state_dict's names, ParamAttr names and shapes, and per-layer rows for the cost tables."""
    import paddle                                             # optional: the oracle's framework
    import paddle.nn as nn
    model, notes = build(kind, fn, repair=declared != "declared")
    rows, handles = [], []
    for name, m in model.named_sublayers():
        if isinstance(m, (nn.Conv2D, nn.Linear)):
            def hook(layer, inputs, output, name=name):
                if isinstance(layer, nn.Conv2D):
                    w = layer.weight.shape                    # K, C/G, R, S
                    macs = int(np.prod(output.shape[1:])) * int(np.prod(w[1:]))
                else:
                    w = layer.weight.shape                    # in, out
                    macs = int(np.prod(w)) * int(np.prod(output.shape[1:-1]))
                params = int(np.prod(w)) + (int(np.prod(layer.bias.shape)) if layer.bias is not None else 0)
                rows.append(dict(name=name, kind=type(layer).__name__, params=params, macs=macs,
                                 out=list(output.shape[1:])))
            handles.append(m.register_forward_post_hook(hook))
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, 3, 224, 224]))
        ran = True
    except ValueError as exc:                                 # the unrepaired 152's forward
        ran, rows = str(exc).splitlines()[0], []
    sd = model.state_dict()
    result = dict(framework=f"paddle {paddle.__version__}, PaddleClas 2.6.0 ({kind}.py)", notes=notes,
                  ran=ran, trainable=int(sum(np.prod(v.shape) for v in sd.values() if not v.stop_gradient)),
                  statistics=int(sum(np.prod(v.shape) for v in sd.values() if v.stop_gradient)),
                  names=[[k, v.name, list(v.shape)] for k, v in sd.items()], rows=rows)
    Path(out).write_text(json.dumps(result))


def jit(kind, fn, out):
    import paddle                                             # optional: the oracle's framework
    model, _ = build(kind, fn)
    spec = [paddle.static.InputSpec([None, 3, 64, 64], "float32", "x")]
    paddle.jit.save(model, str(Path(out) / fn), input_spec=spec)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "oracle":
        kind, fn, out, size, seed, *files = args
        oracle(kind, fn, out, tuple(int(s) for s in size.split("x")), int(seed), *files)
    elif cmd == "counts":
        counts(*args)
    elif cmd == "jit":
        jit(*args)
    else:
        raise SystemExit(f"unknown command {cmd!r}; expected oracle, counts or jit")
