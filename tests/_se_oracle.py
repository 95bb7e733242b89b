"""Oracles for the SE-ResNeXt family: the frameworks' own models, run at float64.

For one model name, :func:`oracle` builds the framework's model (timm 1.0.31 in this process;
PaddleClas 2.6.0 on Paddle 3.3.1 in a fresh process, see tests/_se_paddle.py), gives it the
weights of :func:`draw` (random, with trained-looking BatchNorm: see below), casts it to
float64, runs one eval-mode forward on an odd-sized input and returns an :class:`Oracle`:

- ``params``: the state_dict as float64 NumPy arrays under the framework's own keys, in its
  order (BN running statistics included; ``trainable`` says which are parameters);
- ``logits`` and ``tensors``: every module output, captured by forward hooks and copied at
  hook time (timm's ReLUs and ``x += shortcut`` work in place). A module called k > 1 times
  in one forward (legacy SENet's ``relu``) is recorded as ``NAME#1`` .. ``NAME#k``; a
  value that is a module's *input* (the SE squeeze, the residual add) as ``NAME:input``;
  Paddle's residual add, which no layer owns, as ``BLOCK:add``;
- ``se``: for every block, {role: key in ``tensors``} with the roles of :data:`SE_ROLES`.

Weights (:func:`draw`, one recipe for both frameworks, values from
``numpy.random.default_rng(seed)`` in state_dict order):

- convolutions: He-normal, then every output channel multiplied by 2**k, k uniform in
  {-9, ..., 1}, so the variances BN sees span six decades and more (7.5 measured), down to eps;
- BatchNorm scale: random sign times a magnitude uniform in [1/4, 1) (in [1/8, 1/2) for bn3,
  the residual branch's last BN); shift uniform in [-1/2, 1/2) (bn3: [-1/8, 1/8));
- BatchNorm running statistics: calibrated in one eval-mode forward over a second normal draw
  of the input's shape (not the test input): a pre-hook on each BN sets its mean and variance
  from the BN's actual input just before it runs, then moves them (:func:`statistics_setter`:
  variance times 2**u, u uniform in [-1, 1); mean plus 0.2 standard deviations times a normal
  draw), so every layer is calibrated on what inference computes and eval mode does not
  re-normalise the test input exactly;
- SE reduce / expand: normal, std GAIN / sqrt(fan_in) (GAIN 4 and 3) so that the gates spread
  over (0, 1) and depend on the input; biases uniform in [-1/2, 1/2) and [-1, 1);
- head: uniform in +-4 / sqrt(features), bias uniform in [-1, 1).

Each weight is drawn as a logical [out, in, ...] array and stored in the framework's layout,
so PaddleClas and timm networks whose layers come in the same order get the same values from
the same seed (SE_ResNeXt50_32x4d and seresnext50_32x4d agree to 1e-14 once timm's BN
epsilon is set to Paddle's float32(1e-5): ``bn_eps``). PaddleClas 2.6.0's SE_ResNeXt152_64x4d
cannot run as declared; the oracle runs it repaired (tests/_se_paddle.py, ``Oracle.notes``).

Frameworks are imported inside functions only; a caller without them gets ImportError
(tests use ``pytest.importorskip``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PADDLE_WORKER = Path(__file__).resolve().parent / "_se_paddle.py"
SHAPE = (2, 3, 67, 45)                         # N, C, H, W: odd, so every stride-2 layer meets odd sizes

# name -> (framework, source): timm model name, or (PaddleClas model file, function)
MODELS = OrderedDict([
    ("SE_ResNeXt50_32x4d", ("paddle", ("se_resnext", "SE_ResNeXt50_32x4d"))),
    ("SE_ResNeXt101_32x4d", ("paddle", ("se_resnext", "SE_ResNeXt101_32x4d"))),
    ("SE_ResNeXt152_64x4d", ("paddle", ("se_resnext", "SE_ResNeXt152_64x4d"))),
    ("SE_ResNeXt50_vd_32x4d", ("paddle", ("se_resnext_vd", "SE_ResNeXt50_vd_32x4d"))),
    ("SENet154_vd", ("paddle", ("se_resnext_vd", "SENet154_vd"))),
    ("seresnext26d_32x4d", ("timm", "seresnext26d_32x4d")),
    ("seresnext26t_32x4d", ("timm", "seresnext26t_32x4d")),
    ("seresnext50_32x4d", ("timm", "seresnext50_32x4d")),
    ("seresnext101_32x4d", ("timm", "seresnext101_32x4d")),
    ("seresnext101_32x8d", ("timm", "seresnext101_32x8d")),
    ("seresnext101_64x4d", ("timm", "seresnext101_64x4d")),
    ("seresnext101d_32x8d", ("timm", "seresnext101d_32x8d")),
    ("legacy_seresnext26_32x4d", ("timm", "legacy_seresnext26_32x4d")),
    ("legacy_seresnext50_32x4d", ("timm", "legacy_seresnext50_32x4d")),
    ("legacy_seresnext101_32x4d", ("timm", "legacy_seresnext101_32x4d")),
])
# plain ResNeXt twins, for the cost of SE (counts only)
REFERENCE_MODELS = OrderedDict([("resnext50_32x4d", ("timm", "resnext50_32x4d"))])

# the values of one SE block and of the block around it, in execution order: its input (the
# residual branch's last BN), the squeeze (global average pool), the reduce FC, its ReLU, the
# expand FC, the sigmoid gate, the scaled branch, the residual add, the block output
SE_ROLES = ("input", "pool", "reduce", "relu", "expand", "gate", "scale", "add", "out")
SE_GAINS = {"reduce": 4.0, "expand": 3.0}
SE_BIAS = {"reduce": 0.5, "expand": 1.0}
HEAD_GAIN = 4.0
MAX_CHANNELS = 4096                    # widest BN the statistics are drawn for


class Oracle(NamedTuple):
    name: str
    framework: str             # "timm 1.0.31" / "paddle 3.3.1, PaddleClas 2.6.0"
    x: np.ndarray              # the input, float64
    params: OrderedDict        # framework key -> float64 array (state_dict order)
    trainable: tuple           # the keys that are parameters (not BN running statistics)
    param_names: dict          # Paddle: structured key -> ParamAttr name; timm: {}
    logits: np.ndarray
    tensors: OrderedDict       # captured key -> float64 array, in capture order
    se: OrderedDict            # block -> {role: key in tensors}
    seconds: float             # build + randomise + calibrate + float64 forward
    notes: tuple               # what this oracle had to change in the framework's model
    files: dict = {}           # Paddle: format -> path of the model saved by Paddle itself


def need(framework: str):
    """Skip the calling test (with the install line) unless ``framework``'s oracle can run:
    "timm" (torch==2.13.0 CPU and timm==1.0.31) or "paddle" (paddlepaddle==3.3.1 and the
    PaddleClas model files)."""
    import pytest                                             # only the tests call this (the reference scripts do not)
    if framework == "timm":
        pytest.importorskip("torch", reason="the timm oracle needs torch==2.13.0 (CPU) and timm==1.0.31")
        try:
            timm_module()
        except Exception as exc:  # ImportError, or a broken install
            pytest.skip(f"timm is not importable ({type(exc).__name__}): pip install timm==1.0.31")
    else:
        pytest.importorskip("paddle", reason="the Paddle oracle needs paddlepaddle==3.3.1")
        if importlib.util.find_spec("paddleclas") is None:
            pytest.skip("PaddleClas model files are not installed: pip install --no-deps paddleclas==2.6.0")


# --- the weights: one recipe for every framework -------------------------------------------
def _role_of(name: str, kind: str) -> str:
    """The recipe's role of a conv / bn / linear module from its framework name."""
    low = name.lower()
    if kind in ("conv", "linear"):
        if ".se." in low + "." or ".se_module." in low or ".scale." in low:
            return "reduce" if low.rsplit(".", 1)[-1] in ("fc1", "squeeze") else "expand"
        return "head" if kind == "linear" else "conv"
    last = low.endswith(("bn3", "conv2._batch_norm"))           # timm/legacy bn3, PaddleClas conv2 (x3)
    return "bn_last" if last else "bn"


def draw(entries, seed: int):
    """{key: float64 array} for entries [(key, shape, role, layout)], in the order given.

    role: "conv", "bn_weight", "bn_last_weight", "bn_bias", "bn_last_bias", "mean", "var",
    "reduce_weight", "reduce_bias", "expand_weight", "expand_bias", "head_weight", "head_bias".
    layout: "out_in" (torch Linear / conv [K, C, R, S]) or "in_out" (Paddle Linear); a
    weight is drawn as [out, in, ...] and transposed to "in_out" last, so both frameworks
    draw the same logical matrix for the same position in the order.
    """
    rng = np.random.default_rng(seed)
    out = OrderedDict()
    for key, shape, role, layout in entries:
        logical = tuple(shape[::-1]) if layout == "in_out" else tuple(shape)   # [out, in, ...]
        fan_in = int(np.prod(logical[1:])) if len(logical) > 1 else 1
        if role == "conv":
            v = rng.standard_normal(logical) * np.sqrt(2.0 / fan_in)
            v *= np.ldexp(1.0, rng.integers(-9, 2, logical[0]))[:, None, None, None]
        elif role in ("bn_weight", "bn_last_weight"):
            lo = 0.125 if role == "bn_last_weight" else 0.25
            v = rng.choice((-1.0, 1.0), logical) * rng.uniform(lo, 4 * lo, logical)
        elif role in ("bn_bias", "bn_last_bias"):
            v = rng.uniform(-0.5, 0.5, logical) * (0.25 if role == "bn_last_bias" else 1.0)
        elif role == "mean":
            v = np.zeros(logical)                              # set by calibration
        elif role == "var":
            v = np.ones(logical)
        elif role in ("reduce_weight", "expand_weight"):
            v = rng.standard_normal(logical) * SE_GAINS[role.split("_")[0]] / np.sqrt(fan_in)
        elif role in ("reduce_bias", "expand_bias"):
            b = SE_BIAS[role.split("_")[0]]
            v = rng.uniform(-b, b, logical)
        elif role == "head_weight":
            v = rng.uniform(-1, 1, logical) * HEAD_GAIN / np.sqrt(fan_in)
        elif role == "head_bias":
            v = rng.uniform(-1, 1, logical)
        else:
            raise ValueError(f"{key}: unknown role {role!r}")
        out[key] = v.T.copy() if layout == "in_out" and v.ndim == 2 else v.reshape(shape)
    return out


def statistics_setter(names, seed: int):
    """A function (bn name, its input as float64 N, C, H, W) -> (running mean, running var)
    giving the input's per-channel mean and (biased) variance, moved a little: the variance
    times 2**u, u uniform in [-1, 1); the mean plus 0.2 standard deviations times a normal
    draw. The moves are drawn up front, per name in the order given, so the result does not
    depend on the order the BNs run in."""
    rng = np.random.default_rng(seed + 2)
    moves = {n: (rng.uniform(-1, 1, MAX_CHANNELS), rng.standard_normal(MAX_CHANNELS)) for n in names}

    def set_statistics(name, x):
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))           # C
        u, z = (m[:mean.shape[0]] for m in moves[name])
        var = var * np.exp2(u)
        return mean + 0.2 * np.sqrt(var) * z, var
    return set_statistics


def inputs(shape, seed: int):
    """(test input, calibration batch), float64: two independent normal draws of ``shape``."""
    rng = np.random.default_rng(seed + 1)
    return rng.standard_normal(shape), rng.standard_normal(shape)


# --- timm, in this process ---------------------------------------------------------------------
def timm_module():
    """timm, with the stand-in torchvision needs on this torch build (its compiled operators
    do not load; the model code does not use them)."""
    stand_in = "torchvision._meta_registrations"
    sys.modules.setdefault(stand_in, types.ModuleType(stand_in))
    import timm                                               # optional: the oracle's framework
    return timm


def _torch_entries(model):
    """draw()'s entries for a torch model, from its modules (role by module type and name)."""
    import torch.nn as nn                                     # optional: the oracle's framework
    entries = []
    for mname, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            role = _role_of(mname, "conv")
            entries.append((f"{mname}.weight", tuple(m.weight.shape),
                            "conv" if role == "conv" else f"{role}_weight", "out_in"))
            if m.bias is not None:
                entries.append((f"{mname}.bias", tuple(m.bias.shape), f"{role}_bias", "out_in"))
        elif isinstance(m, nn.BatchNorm2d):
            last = "_last" if _role_of(mname, "bn") == "bn_last" else ""
            entries += [(f"{mname}.weight", (m.num_features,), f"bn{last}_weight", "out_in"),
                        (f"{mname}.bias", (m.num_features,), f"bn{last}_bias", "out_in"),
                        (f"{mname}.running_mean", (m.num_features,), "mean", "out_in"),
                        (f"{mname}.running_var", (m.num_features,), "var", "out_in")]
        elif isinstance(m, nn.Linear):
            role = _role_of(mname, "linear")
            entries += [(f"{mname}.weight", tuple(m.weight.shape), f"{role}_weight", "out_in"),
                        (f"{mname}.bias", tuple(m.bias.shape), f"{role}_bias", "out_in")]
    return entries


def calibrate(bns, seed: int, run, assign):
    """Set each BN's running statistics from its actual input during ``run()`` (one eval-mode
    forward over the calibration batch), moved by :func:`statistics_setter`, by a pre-hook just
    before the BN runs, so every later layer is calibrated on what inference computes.
    bns: [(name, layer)] (torch and Paddle layers both take forward pre-hooks);
    assign(layer, mean, var) stores float64 arrays in the framework's buffers."""
    setter = statistics_setter([n for n, _ in bns], seed)

    def pre_hook(layer, args, name):
        x = args[0]
        assign(layer, *setter(name, (x.detach() if hasattr(x, "detach") else x).numpy()))
    handles = [m.register_forward_pre_hook(lambda m, a, n=n: pre_hook(m, a, n)) for n, m in bns]
    try:
        run()
    finally:
        for h in handles:
            h.remove()


def calibrate_paddle(model, seed, batch, dtype="float64"):
    """:func:`calibrate` for a Paddle model: every BatchNorm / BatchNorm2D set during one eval
    forward over ``batch`` (float64 N, C, H, W), the statistics stored in ``dtype``."""
    import paddle                                             # optional: the oracle's framework
    import paddle.nn as nn                                    # optional: the oracle's framework
    bns = [(n, m) for n, m in model.named_sublayers() if isinstance(m, (nn.BatchNorm, nn.BatchNorm2D))]

    def assign(layer, mean, var):
        layer._mean.set_value(mean.astype(dtype))
        layer._variance.set_value(var.astype(dtype))

    def run():
        model.eval()
        with paddle.no_grad():
            model(paddle.to_tensor(batch.astype(dtype)))
    calibrate(bns, seed, run, assign)


def _calibrate_torch(model, batch, seed):
    import torch                                              # optional: the oracle's framework
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]

    def assign(m, mean, var):
        m.running_mean.copy_(torch.from_numpy(mean))
        m.running_var.copy_(torch.from_numpy(var))

    def run():
        with torch.no_grad():
            model.eval()(torch.from_numpy(batch))
    calibrate(bns, seed, run, assign)


def torch_capture(model, x, se_blocks):
    """(logits, tensors) of one eval forward with every leaf module, every block and every
    SE module hooked; plus the inputs of each SE's reduce and each block's last ReLU."""
    import torch                                              # optional: the oracle's framework
    tensors, calls, handles = OrderedDict(), {}, []

    def record(name, value, suffix=""):
        n = calls[name, suffix] = calls.get((name, suffix), 0) + 1
        if n == 2:                                            # called again: number every call
            tensors[f"{name}#1{suffix}"] = tensors.pop(f"{name}{suffix}")
        tensors[f"{name}{suffix}" if n == 1 else f"{name}#{n}{suffix}"] = value.detach().clone().numpy()

    wanted_inputs = {k for b in se_blocks.values() for k in (b["pool_of"], b["add_of"])}
    blocks = set(se_blocks) | {b["se_module"] for b in se_blocks.values()}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Identity) or not name:
            continue
        if next(m.children(), None) is None or name in blocks:
            handles.append(m.register_forward_hook(lambda _m, _i, out, n=name: record(n, out)))
        if name in wanted_inputs:
            handles.append(m.register_forward_pre_hook(
                lambda _m, args, n=name: record(n, args[0], ":input")))
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    for h in handles:
        h.remove()
    return logits, tensors


def _timm_se_blocks(model):
    """{block: hooks and keys} for timm's ResNet (se.*) and legacy SENet (se_module.*)."""
    blocks = OrderedDict()
    for name, m in model.named_modules():
        if hasattr(m, "se") and m.se is not None and hasattr(m, "act3"):        # timm ResNet
            se, last, act = f"{name}.se", f"{name}.act3", "act"
            gate = f"{se}.gate"
            add = f"{last}:input"
        elif hasattr(m, "se_module"):                                           # legacy SENet
            se, last, act = f"{name}.se_module", f"{name}.relu", "relu"
            gate = f"{se}.sigmoid"
            add = f"{last}#3:input"
        else:
            continue
        blocks[name] = dict(se_module=se, pool_of=f"{se}.fc1", add_of=last, roles=OrderedDict(
            input=f"{name}.bn3", pool=f"{se}.fc1:input", reduce=f"{se}.fc1", relu=f"{se}.{act}",
            expand=f"{se}.fc2", gate=gate, scale=se, add=add, out=name))
    return blocks


def timm_oracle(name: str, shape=SHAPE, seed: int = 0, bn_eps=None) -> Oracle:
    """bn_eps: None keeps timm's BatchNorm epsilon (1e-5); a value replaces it in every BN (the
    cross-check with Paddle, whose float64 BN adds float32(1e-5), sets that)."""
    import torch                                              # optional: the oracle's framework
    start = time.perf_counter()
    timm = timm_module()
    model = timm.create_model(name, pretrained=False).eval()
    notes = ()
    if bn_eps is not None:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eps = bn_eps
        notes = (f"every BatchNorm's eps set to {bn_eps!r}",)
    sd = model.state_dict()
    values = draw(_torch_entries(model), seed)
    missing = [k for k in sd if k not in values and not k.endswith("num_batches_tracked")]
    assert not missing, missing[:5]
    model = model.double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in values.items()}, strict=False)
    x, calibration = inputs(shape, seed)
    _calibrate_torch(model, calibration, seed)
    se = _timm_se_blocks(model)
    logits, tensors = torch_capture(model, x, se)
    params = OrderedDict((k, v.detach().numpy().copy()) for k, v in model.state_dict().items()
                         if not k.endswith("num_batches_tracked"))
    trainable = tuple(k for k, _ in model.named_parameters())
    roles = OrderedDict((b, info["roles"]) for b, info in se.items())
    return Oracle(name, f"timm {timm.__version__}, torch {torch.__version__}", x, params, trainable,
                  {}, logits, tensors, roles, time.perf_counter() - start, notes)


# --- PaddleClas, one model per process ----------------------------------------------------------
def run_worker(*args, timeout: float = 1800):
    """Run tests/_se_paddle.py with ``args`` in a fresh process; raise with its stderr on failure."""
    cmd = [sys.executable, str(PADDLE_WORKER), *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")])))
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")


def paddle_oracle(name: str, shape=SHAPE, seed: int = 0, timeout: float = 1800, save_dir=None,
                  formats=("pdparams", "jit")) -> Oracle:
    """Runs tests/_se_paddle.py in a fresh process (PaddleClas fixes ParamAttr names, so one
    process holds one model) and reads back what it wrote. With ``save_dir``, Paddle also
    saves the model there in ``formats`` (``Oracle.files``: "pdparams" -> the .pdparams,
    "jit" -> the jit.save prefix)."""
    kind, fn = MODELS[name][1]
    files = {}
    extra = []
    if save_dir is not None:
        extra = [str(save_dir), ",".join(formats)]
        files = {f: Path(save_dir) / (f"{fn}.pdparams" if f == "pdparams" else f"{fn}_infer") for f in formats}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "oracle.npz"
        run_worker("oracle", kind, fn, out, "x".join(map(str, shape)), seed, *extra, timeout=timeout)
        with np.load(out, allow_pickle=False) as d:
            rec = {k: d[k] for k in d.files}
    meta = json.loads(str(rec.pop("meta")))

    def section(prefix, order):
        return OrderedDict((k, rec[f"{prefix}/{k}"]) for k in order)
    return Oracle(name, meta["framework"], rec["x"], section("params", meta["params"]),
                  tuple(meta["trainable"]), meta["param_names"], rec["logits"],
                  section("tensors", meta["tensors"]),
                  OrderedDict((b, OrderedDict(r)) for b, r in meta["se"]), meta["seconds"],
                  tuple(meta["notes"]), files)


def oracle(name: str, shape=SHAPE, seed: int = 0, bn_eps=None, save_dir=None) -> Oracle:
    """The framework's model ``name`` (a key of :data:`MODELS`), randomised, run at float64;
    ``bn_eps``: see :func:`timm_oracle` (timm models only); ``save_dir``: see
    :func:`paddle_oracle` (Paddle models only)."""
    framework, source = MODELS[name]
    if framework == "timm":
        return timm_oracle(source, shape, seed, bn_eps)
    if bn_eps is not None:
        raise ValueError(f"{name}: bn_eps applies to timm models only")
    return paddle_oracle(name, shape, seed, save_dir=save_dir)


def fc_matrix(o: Oracle, layer: str) -> np.ndarray:
    """An SE layer's weight as a logical [out, in] matrix (timm: a 1x1 conv [out, in, 1, 1];
    Paddle: a Linear [in, out])."""
    w = o.params[f"{layer}.weight"]
    return w.reshape(w.shape[:2]) if w.ndim == 4 else w.T


def twin_errors(paddle: Oracle, timm: Oracle) -> dict:
    """{(PaddleClas tensor key, role): rel. error} of every SE role of every block of a
    PaddleClas oracle against a timm oracle of the same network (bb_S_I is layer{S+1}.I)."""
    errors = {}
    for block, roles in paddle.se.items():
        stage, index = block.split("_")[1:]
        twin = timm.se[f"layer{int(stage) + 1}.{index}"]
        for role in SE_ROLES:
            theirs = timm.tensors[twin[role]]
            ours = paddle.tensors[roles[role]].reshape(theirs.shape)
            errors[roles[role], role] = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
    return errors


def trainable_count(o: Oracle) -> int:
    return int(sum(o.params[k].size for k in o.trainable))

