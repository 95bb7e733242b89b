"""Golden gradients from real Paddle's autograd, in float64, for numpy-resnext's backward.

One run builds one Paddle model, gives its BatchNorm layers random statistics (``--bn
trained``: trained-looking ones, variances down to eps, as tests/_se_oracle.py), and records
into one .npz (canonical names; Paddle's [in, out] fc weight transposed to [out, in]):

  params/<name>          every tensor before anything ran (BN running statistics included)
  x, dlogits, labels     the input, a random dloss/dlogits, integer labels
  eval/logits, eval/grad/<name>     BN in inference mode; loss = sum(logits * dlogits);
                                    grad/input is the input's gradient
  train/logits, train/grad/<name>   BN in training mode (batch statistics), same loss
  train/running/<name>   running_mean / running_var after that one training forward
  sgd/params/<name>      every tensor after STEPS steps of paddle.optimizer.Momentum
                         (weight_decay = L2 coefficient, use_nesterov False) on the mean
                         softmax cross-entropy of (x, labels), BN in training mode
  sgd/loss               the loss of each step
  meta                   JSON: paddle version, model, seed, sizes, optimizer settings

Models: ``tiny`` (paddle.vision's ResNet classes cut to one stage of two blocks, cardinality
2, width 4, 5 classes: the committed fixture), ``resnext50_32x4d`` (paddle.vision) and
``ResNeXt50_vd_32x4d`` (PaddleClas resnext_vd.py). PaddleClas fixes ParamAttr names, so
only one of its models can live in a process: run one model per invocation.

    /work/dev/bin/python reference/paddle_grads.py tiny --out reference/fixtures/grads/tiny.npz
    /work/dev/bin/python reference/paddle_grads.py ResNeXt50_vd_32x4d --out /tmp/vd.npz --size 32
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # _manifest, paddle_models
from _manifest import file_entry, manifest_key, save_npz, update_manifest  # noqa: E402
from paddle_models import ppcls_module  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY, STEPS = 0.05, 0.9, 1e-3, 2


# --- models ---------------------------------------------------------------------------
def tiny_model(paddle):
    """paddle.vision's ResNet with one stage of two ResNeXt blocks (C=2, d=4), 5 classes.

    Canonical config: numpy_resnext.archs.custom(depths=(2,), cardinality=2, base_width=4,
    num_classes=5)."""
    from paddle.vision.models.resnet import BottleneckBlock, ResNet
    model = ResNet(BottleneckBlock, depth=50, width=4, groups=2, num_classes=5)
    model.layer1 = model.layer1[:2]                 # keep layer1.0 (projection) and layer1.1
    model.layer2 = paddle.nn.Identity()
    model.layer3 = paddle.nn.Identity()
    model.layer4 = paddle.nn.Identity()
    model.fc = paddle.nn.Linear(256, 5)
    return model


def vision_model(paddle, name):
    import paddle.vision.models as models
    return getattr(models, name)()


def ppcls_model(paddle, name):
    """A PaddleClas resnext_vd.py model, from the installed wheel (paddle_models.ppcls_module)."""
    return getattr(ppcls_module("resnext_vd"), name)()


# --- names: Paddle's state_dict keys -> canonical ---------------------------------------
def vision_canonical(key):
    return key.replace("._mean", ".running_mean").replace("._variance", ".running_var")


PPCLS_BN = {"weight": "weight", "bias": "bias", "_mean": "running_mean", "_variance": "running_var"}
PPCLS_STEM = {"conv1_1": ("conv1.0", "conv1.1"), "conv1_2": ("conv1.3", "conv1.4"),
              "conv1_3": ("conv1.6", "bn1")}
PPCLS_ROLE = {"conv0": ("conv1", "bn1"), "conv1": ("conv2", "bn2"), "conv2": ("conv3", "bn3"),
              "short": ("downsample.1", "downsample.2")}


def ppcls_canonical(key):
    """resnext_vd.py keys (``bb_0_0.conv1._conv.weight``) -> timm-style canonical names."""
    if key.startswith("out."):
        return "fc." + key[4:]
    parts = key.split(".")
    if parts[0] in PPCLS_STEM:
        conv, bn = PPCLS_STEM[parts[0]]
        layer = parts[1:]
    else:
        _, stage, block = parts[0].split("_")
        conv, bn = (f"layer{int(stage) + 1}.{block}.{n}" for n in PPCLS_ROLE[parts[1]])
        layer = parts[2:]
    if layer[0] == "_conv":
        return f"{conv}.weight"
    return f"{bn}.{PPCLS_BN[layer[1]]}"


def canonical_state(model, to_canonical):
    """{canonical name: float64 array} (fc weight as [out, in]) and the name map."""
    out, names = {}, {}
    for key, value in model.state_dict().items():
        name = to_canonical(key)
        a = value.numpy()
        out[name] = a.T.copy() if name == "fc.weight" else a.copy()
        names[name] = key
    return out, names


# --- the runs ---------------------------------------------------------------------------
def randomise_bn(model, rng, paddle):
    """Random BN weight/bias/statistics so the BN math is exercised, not scale 1 / shift 0."""
    for key, value in model.state_dict().items():
        shape = value.shape
        if key.endswith(("_mean",)):
            new = rng.normal(0, 0.1, shape)
        elif key.endswith("_variance"):
            new = rng.uniform(0.5, 2.0, shape)
        elif value.ndim == 1 and not key.startswith(("fc.", "out.")):
            new = rng.uniform(0.5, 1.5, shape) if key.endswith("weight") else rng.normal(0, 0.1, shape)
        else:
            continue
        value.set_value(new.astype(np.float64))


def trained_bn(model, rng, paddle, calibration, seed):
    """Trained-looking BatchNorm, the recipe of tests/_se_oracle.py: every convolution's output
    channels scaled by 2**k (k in -9..1), so BN variances reach down to eps; BN scales of both
    signs; running statistics calibrated in one eval forward over ``calibration``, each set
    by a pre-hook from the BN's actual input just before it runs, then moved a little."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    import _se_oracle as so
    nn = paddle.nn
    for _, m in model.named_sublayers():
        if isinstance(m, nn.Conv2D):
            w = m.weight.numpy()
            m.weight.set_value(w * np.ldexp(1.0, rng.integers(-9, 2, w.shape[0]))[:, None, None, None])
    for _, m in model.named_sublayers():
        if isinstance(m, (nn.BatchNorm, nn.BatchNorm2D)):
            c = m.weight.shape[0]
            m.weight.set_value(rng.choice((-1.0, 1.0), c) * rng.uniform(0.25, 1.0, c))
            m.bias.set_value(rng.uniform(-0.5, 0.5, c))
    so.calibrate_paddle(model, seed, calibration)


def grads_of(model, names, paddle, xt, to_canonical):
    out = {"input": xt.grad.numpy().copy()}
    for key, p in model.named_parameters():
        if p.grad is None:
            continue
        g = p.grad.numpy()
        name = to_canonical(key)
        out[name] = g.T.copy() if name == "fc.weight" else g.copy()
    return out


def run(model_name, out_path, size, batch, seed, compress=True, lr=LR, steps=STEPS, bn="random"):
    import paddle
    paddle.set_default_dtype("float64")
    paddle.seed(seed)
    rng = np.random.default_rng(seed)
    if model_name == "tiny":
        model, to_canonical = tiny_model(paddle), vision_canonical
    elif model_name.startswith("ResNeXt"):
        model, to_canonical = ppcls_model(paddle, model_name), ppcls_canonical
    else:
        model, to_canonical = vision_model(paddle, model_name), vision_canonical
    model.to(dtype="float64")
    if bn == "trained":
        trained_bn(model, rng, paddle, rng.standard_normal((batch, 3, size, size)), seed)
    else:
        randomise_bn(model, rng, paddle)
    initial = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    params, names = canonical_state(model, to_canonical)
    bad = [n for n, a in params.items() if a.dtype != np.float64]
    assert not bad, f"not float64 after model.to: {bad[:5]}"
    classes = params["fc.bias"].shape[0]
    x = rng.standard_normal((batch, 3, size, size))
    dlogits = rng.standard_normal((batch, classes))
    labels = rng.integers(0, classes, size=batch)
    rec = {"x": x, "dlogits": dlogits, "labels": labels}
    rec.update({f"params/{n}": a for n, a in params.items()})

    for mode in ("eval", "train"):
        model.train() if mode == "train" else model.eval()
        xt = paddle.to_tensor(x, stop_gradient=False)
        logits = model(xt)
        (logits * paddle.to_tensor(dlogits)).sum().backward()
        rec[f"{mode}/logits"] = logits.numpy().copy()
        for n, g in grads_of(model, names, paddle, xt, to_canonical).items():
            rec[f"{mode}/grad/{n}"] = g
        model.clear_gradients()
        if mode == "train":
            after, _ = canonical_state(model, to_canonical)
            for n, a in after.items():
                if n.endswith(("running_mean", "running_var")):
                    rec[f"train/running/{n}"] = a
        model.set_state_dict(initial)               # undo the running-statistics update

    model.train()
    opt = paddle.optimizer.Momentum(learning_rate=lr, momentum=MOMENTUM, parameters=model.parameters(),
                                    weight_decay=WEIGHT_DECAY, use_nesterov=False)
    losses = []
    for _ in range(steps):
        logits = model(paddle.to_tensor(x))
        loss = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(labels.reshape(-1, 1)))
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss.numpy()))
    after, _ = canonical_state(model, to_canonical)
    rec.update({f"sgd/params/{n}": a for n, a in after.items()})
    rec["sgd/loss"] = np.array(losses)
    meta = {"paddle": paddle.__version__, "model": model_name, "seed": seed, "batch": batch, "bn": bn,
            "size": size, "lr": lr, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
            "steps": steps, "loss": "eval/train: sum(logits * dlogits); sgd: mean cross-entropy",
            "paddle_names": names}
    rec["meta"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    save_npz(out_path, rec, compressed=compress)
    return meta


def record(out_path, meta):
    """Set this file's entry (prefix "grads/") in the shared MANIFEST, when it is a fixture."""
    key = manifest_key(out_path)
    if key is None:
        return
    facts = {k: v for k, v in meta.items() if k != "paddle_names"}
    update_manifest("grads/", {key: file_entry(out_path, script="reference/paddle_grads.py", **facts)})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="tiny | resnext50_32x4d (paddle.vision) | ResNeXt50_vd_32x4d (PaddleClas)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--steps", type=int, default=STEPS, help="optimizer steps recorded under sgd/")
    ap.add_argument("--uncompressed", action="store_true", help="np.savez (faster for large models)")
    ap.add_argument("--bn", choices=("random", "trained"), default="random",
                    help="BN: random statistics (variances 0.5-2), or trained-looking (down to eps)")
    args = ap.parse_args(argv)
    meta = run(args.model, args.out, args.size, args.batch, args.seed, compress=not args.uncompressed,
               lr=args.lr, steps=args.steps, bn=args.bn)
    record(args.out, meta)
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes) with Paddle {meta['paddle']}")


if __name__ == "__main__":
    main()
