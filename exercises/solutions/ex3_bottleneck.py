"""Exercise 3, solved: a bottleneck from the package's fast ops, inference BatchNorm."""

import numpy_resnext as nrx


def _unit(x, params, conv, bn, stride=1, pad=0, groups=1, relu=True):
    """conv -> BN [-> ReLU] and what its backward needs."""
    w = params[f"{conv}.weight"]
    z = nrx.conv2d(x, w, stride=stride, padding=pad, groups=groups)
    stats = [params[f"{bn}.{f}"] for f in ("weight", "bias", "running_mean", "running_var")]
    y = nrx.batchnorm(z, *stats)
    if relu:
        y = nrx.relu(y)
    return y, dict(x=x, z=z, y=y if relu else None, conv=conv, bn=bn, w=w, stats=stats,
                   stride=stride, pad=pad, groups=groups)


def _unit_backward(dout, c, grads):
    if c["y"] is not None:
        dout = nrx.relu_backward(dout, c["y"])
    weight, _, mean, var = c["stats"]
    dz, grads[f"{c['bn']}.weight"], grads[f"{c['bn']}.bias"] = nrx.batchnorm_backward(dout, c["z"], weight, mean, var)
    dx, grads[f"{c['conv']}.weight"] = nrx.conv2d_backward(dz, c["x"], c["w"], c["stride"], c["pad"], c["groups"])
    return dx


def bottleneck_forward(x, params, name, stride=1, groups=1, project=False):
    units = []
    y = x
    for conv, bn, s, pad, g, relu in ((f"{name}.conv1", f"{name}.bn1", 1, 0, 1, True),
                                      (f"{name}.conv2", f"{name}.bn2", stride, 1, groups, True),
                                      (f"{name}.conv3", f"{name}.bn3", 1, 0, 1, False)):
        y, c = _unit(y, params, conv, bn, s, pad, g, relu)
        units.append(c)
    shortcut, sc = x, None
    if project:
        shortcut, sc = _unit(x, params, f"{name}.downsample.0", f"{name}.downsample.1", stride, relu=False)
    out = nrx.relu(y + shortcut)
    return out, (units, sc, out)


def bottleneck_backward(dout, cache):
    units, sc, out = cache
    grads = {}
    d = nrx.relu_backward(dout, out)
    dx = d
    for c in reversed(units):
        dx = _unit_backward(dx, c, grads)
    return dx + (_unit_backward(d, sc, grads) if sc is not None else d), grads
