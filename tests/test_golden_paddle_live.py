"""Live Paddle lane: a golden dump of ResNeXt50_32x4d with weights read from a real
``paddle.save`` file, compared with the intermediates real Paddle computes in float64.

paddle.vision.models.resnext50_32x4d is built in float64 with random weights and random
BatchNorm running statistics, saved with paddle.save, and run with a forward post-hook on
every sublayer (a layer called k > 1 times, the Bottleneck's shared ``relu``, is recorded
as NAME#1 ... NAME#k, as the paddle.vision map expects). Then, through the command line as a
user would: ``golden --weights file.pdparams`` and ``compare --map paddle.vision`` at 1e-10.
"""

import math
from collections import Counter, OrderedDict

import numpy as np
import pytest

from numpy_resnext.cli import main
from numpy_resnext.golden import compare, read_golden, write_golden
from _scratch import scratch

pytestmark = [pytest.mark.paddle, pytest.mark.slow]


def random_state(state_shapes, seed):
    """Float64 values for paddle.vision's state_dict: He-scaled convs, BN scale/offset and
    running mean/variance all non-trivial, fc [in, out] uniform in +-1/sqrt(in)."""
    rng = np.random.default_rng(seed)
    out = OrderedDict()
    for key, shape in state_shapes.items():
        if len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            value = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        elif key.startswith("fc."):
            value = rng.uniform(-1, 1, shape) / math.sqrt(2048)
        elif key.endswith(("._variance", ".weight")):
            value = rng.uniform(0.5, 1.5, shape)
        else:                                               # BN offset and running mean
            value = rng.uniform(-0.2, 0.2, shape)
        out[key] = value
    return out


def capture(paddle, model, x):
    """Every sublayer's output in hook order, float64 copies, repeated layers as NAME#k."""
    calls, hooks = [], []
    for name, layer in model.named_sublayers():
        def hook(layer, inputs, output, name=name):
            calls.append((name, np.array(output.numpy(), copy=True)))
        hooks.append(layer.register_forward_post_hook(hook))
    try:
        with paddle.no_grad():
            model(paddle.to_tensor(x))
    finally:
        for h in hooks:
            h.remove()
    counts, seen = Counter(n for n, _ in calls), Counter()
    out = OrderedDict([("input", x)])
    for name, value in calls:
        if counts[name] > 1:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        out[name] = value
    return out


@pytest.fixture(scope="module")
def paddle_run(paddle, tmp_path_factory):
    """(directory, weights file, input file, capture file) of one real Paddle run."""
    with scratch(tmp_path_factory, "paddle_golden") as tmp:
        paddle.set_device("cpu")
        previous = paddle.get_default_dtype()
        paddle.set_default_dtype("float64")
        try:
            model = paddle.vision.models.resnext50_32x4d()
        finally:
            paddle.set_default_dtype(previous)
        model.eval()
        shapes = OrderedDict((k, tuple(v.shape)) for k, v in model.state_dict().items())
        assert shapes["fc.weight"] == (2048, 1000) and "bn1._variance" in shapes
        model.set_state_dict({k: paddle.to_tensor(v) for k, v in random_state(shapes, 2026).items()})
        assert all(str(p.dtype).endswith("float64") for p in model.state_dict().values())
        paddle.save(model.state_dict(), str(tmp / "resnext50_32x4d.pdparams"))
        x = np.random.default_rng(7).standard_normal((1, 3, 64, 64))
        np.save(tmp / "x.npy", x)
        cap = capture(paddle, model, x)
        write_golden(tmp / "paddle_capture.npz", cap)
        yield tmp, cap


def test_golden_from_pdparams_matches_paddle_at_1e_10(paddle_run, capsys):
    tmp, cap = paddle_run
    assert "layer1.0.relu#3" in cap and cap["avgpool"].shape == (1, 2048, 1, 1)
    rc = main(["golden", "ResNeXt50_32x4d", "--input", str(tmp / "x.npy"), "--output",
               str(tmp / "golden.npz"), "--weights", str(tmp / "resnext50_32x4d.pdparams")])
    assert rc == 0
    capsys.readouterr()
    rc = main(["compare", str(tmp / "golden.npz"), str(tmp / "paddle_capture.npz"),
               "--map", "paddle.vision", "--rtol", "1e-10", "--atol", "0", "--show", "fail"])
    out = capsys.readouterr().out
    print(out.splitlines()[-2:])
    assert rc == 0, out
    report = compare(tmp / "golden.npz", tmp / "paddle_capture.npz", rtol=1e-10, atol=0,
                     name_map="paddle.vision")
    ours, manifest = read_golden(tmp / "golden.npz")
    assert manifest["weights"]["source"] == "resnext50_32x4d.pdparams"
    assert [r.name for r in report.missing] == [n for n in ours if n.endswith(".add")]
    assert len(report.compared) == 159
    worst = max(r.max_rel for r in report.compared)
    print(f"ResNeXt50_32x4d vs Paddle float64: {len(report.compared)} tensors, worst max_rel {worst:.2e}")
    assert worst < 1e-10


def test_perturbed_paddle_tensor_is_named_as_first_divergence(paddle_run, capsys):
    tmp, cap = paddle_run
    if not (tmp / "golden.npz").exists():
        assert main(["golden", "ResNeXt50_32x4d", "--input", str(tmp / "x.npy"), "--output",
                     str(tmp / "golden.npz"), "--weights", str(tmp / "resnext50_32x4d.pdparams")]) == 0
    bad = OrderedDict((k, v) for k, v in cap.items())
    bad["layer3.2.relu#2"] = cap["layer3.2.relu#2"].copy()
    flat = bad["layer3.2.relu#2"].reshape(-1)
    flat[np.argmax(np.abs(flat))] *= 1 + 1e-8                  # the largest value: never a ReLU zero
    bad["layer4.0.conv1"] = cap["layer4.0.conv1"] + 1.0          # a later, larger error
    write_golden(tmp / "bad.npz", bad)
    capsys.readouterr()
    rc = main(["compare", str(tmp / "golden.npz"), str(tmp / "bad.npz"), "--map", "paddle.vision",
               "--rtol", "1e-10", "--show", "fail"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "first in execution order: layer3.2.relu2 (candidate 'layer3.2.relu#2')" in out
