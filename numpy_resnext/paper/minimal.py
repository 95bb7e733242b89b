"""A whole ResNeXt, forward and backward, in one file to read in one sitting.

Plain NumPy, NCHW arrays, one function per op and one per op's backward. Each forward
returns (output, cache) and each backward takes (dout, cache) and returns the gradients,
as in CS231n's layers. It computes the same numbers as the engine (tests/test_minimal.py
holds the logits and every gradient equal in float64 on a tiny model), but none of the
engine's speed work: no im2col, no channels-last memory, no cache-sized runs, nothing in
place. When a function here is clear, step to its fast twin, named in its docstring; the
derivations are in docs/backward.md, docs/grouped_convolution.md and docs/batchnorm.md.

Supported: the plain stem (7x7/2 convolution, 3x3/2 max-pool) and the CIFAR stem (3x3/1,
no pool), projection shortcuts, inference or training BatchNorm. Not here: the "vd" models'
deep stem and average-pool shortcut (numpy_resnext/plan.py, ops/pooling.py), and the update
of BatchNorm's running statistics (numpy_resnext/grad.py, ops/batchnorm.py).

    logits, caches = forward(params, x, arch, train=True)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    grads = backward(dlogits, caches)          # "input" and every parameter's gradient

``params`` holds arrays under the package's canonical names (``model.params``), ``arch``
anything with ``depths``, ``cardinality``, ``base_width`` and ``stem`` (an ArchConfig).
"""

import numpy as np

EPS = 1e-5                                                       # BatchNorm's epsilon, as Paddle and torch


# --- convolution -------------------------------------------------------------------------------
def conv_forward(x, w, stride=1, pad=0, groups=1):
    """out[n, k, i, j] = sum over c, r, s of w[k, c, r, s] * xpad[n, g*Cg + c, i*stride + r,
    j*stride + s], with g = k // (K/G). x (N, C, H, W), w (K, C/G, R, S) -> (N, K, OH, OW).
    Fast twin: numpy_resnext/ops/conv.py conv2d (im2col, one batched matmul per group)."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    Kg = K // groups
    OH, OW = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, K, OH, OW), dtype=x.dtype)
    for g in range(groups):                                      # group g: its own channels in and out
        xg, wg = xp[:, g * Cg:(g + 1) * Cg], w[g * Kg:(g + 1) * Kg]
        for r in range(R):
            for s in range(S):                                   # one kernel tap at every output pixel
                tap = xg[:, :, r:r + stride * OH:stride, s:s + stride * OW:stride]       # N, Cg, OH, OW
                out[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", tap, wg[:, :, r, s])
    return out, (x, w, stride, pad, groups)


def conv_backward(dout, cache):
    """Every multiply-add of the forward sends dout * w back to the input pixel it read and
    dout * x to the weight (docs/backward.md, section 1). Returns (dx, dw).
    Fast twin: ops/conv.py conv2d_backward; loop twin: ops/naive.py conv2d_backward."""
    x, w, stride, pad, groups = cache
    K, Cg, R, S = w.shape
    Kg, (OH, OW) = K // groups, dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for g in range(groups):
        cin, kout = slice(g * Cg, (g + 1) * Cg), slice(g * Kg, (g + 1) * Kg)
        for r in range(R):
            for s in range(S):
                rows, cols = slice(r, r + stride * OH, stride), slice(s, s + stride * OW, stride)
                tap = xp[:, cin, rows, cols]                                               # N, Cg, OH, OW
                dw[kout, :, r, s] += np.einsum("nkhw,nchw->kc", dout[:, kout], tap)
                dxp[:, cin, rows, cols] += np.einsum("nkhw,kc->nchw", dout[:, kout], w[kout, :, r, s])
    H, W = x.shape[2:]
    return dxp[:, :, pad:pad + H, pad:pad + W], dw


# --- BatchNorm -----------------------------------------------------------------------------------
def bn_forward(x, p, name, train):
    """Per channel, (x - mean) / sqrt(var + eps) * weight + bias, with the batch's mean and
    biased variance (train) or the running ones. Fast twin: ops/batchnorm.py."""
    if train:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))                          # C, C
    else:
        mean, var = p[f"{name}.running_mean"], p[f"{name}.running_var"]
    inv_std = 1.0 / np.sqrt(var + EPS)                                                     # C
    xhat = (x - mean[:, None, None]) * inv_std[:, None, None]                              # N, C, H, W
    out = xhat * p[f"{name}.weight"][:, None, None] + p[f"{name}.bias"][:, None, None]
    return out, (xhat, inv_std, p[f"{name}.weight"], name, train)


def bn_backward(dout, cache):
    """Returns (dx, {name.weight, name.bias}). In training mode the batch mean and variance
    depend on x too, which adds the two mean terms (docs/batchnorm.md derives them)."""
    xhat, inv_std, weight, name, train = cache
    dweight, dbias = (dout * xhat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))
    g = dout * weight[:, None, None]                                                       # d loss / d xhat
    if train:
        g = g - g.mean(axis=(0, 2, 3), keepdims=True) - xhat * (g * xhat).mean(axis=(0, 2, 3), keepdims=True)
    return g * inv_std[:, None, None], {f"{name}.weight": dweight, f"{name}.bias": dbias}


# --- ReLU, pooling, the fully connected layer, the loss -------------------------------------------
def relu_forward(x):
    return np.maximum(x, 0), x > 0


def relu_backward(dout, mask):
    return dout * mask


def maxpool_forward(x, k=3, stride=2, pad=1):
    """The largest value of each k x k window; padding is -inf and never wins."""
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    taps = np.stack([xp[:, :, r:r + stride * OH:stride, s:s + stride * OW:stride]
                     for r in range(k) for s in range(k)])                                 # k*k, N, C, OH, OW
    first = taps.argmax(axis=0)                                  # the first maximum, row by row
    return taps.max(axis=0), (x.shape, first, k, stride, pad)


def maxpool_backward(dout, cache):
    """Each window's gradient goes to the pixel that won it (ops/pooling.py maxpool2d_backward)."""
    shape, first, k, stride, pad = cache
    N, C, H, W = shape
    OH, OW = dout.shape[2:]
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dout.dtype)
    for t in range(k * k):
        r, s = divmod(t, k)
        dxp[:, :, r:r + stride * OH:stride, s:s + stride * OW:stride] += dout * (first == t)
    return dxp[:, :, pad:pad + H, pad:pad + W]


def fc_forward(x, p):
    """Global average pool, then logits = features @ fc.weight.T + fc.bias (fc.weight is (out, in))."""
    features = x.mean(axis=(2, 3))                                                         # N, C
    return features @ p["fc.weight"].T + p["fc.bias"], (features, x.shape, p["fc.weight"])


def fc_backward(dlogits, cache):
    features, shape, w = cache
    dfeatures = dlogits @ w                                                                # N, C
    dx = np.broadcast_to(dfeatures[:, :, None, None] / (shape[2] * shape[3]), shape).copy()
    return dx, {"fc.weight": dlogits.T @ features, "fc.bias": dlogits.sum(axis=0)}


def softmax_cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[label]; returns (loss, dloss/dlogits)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    N = len(labels)
    loss = -np.log(p[np.arange(N), labels]).mean()
    d = p.copy()
    d[np.arange(N), labels] -= 1
    return loss, d / N


# --- the network ------------------------------------------------------------------------------------
def conv_bn(x, p, conv, bn, train, stride=1, pad=0, groups=1, relu=True):
    """conv -> BN [-> ReLU], the unit every layer of the network is made of."""
    y, c1 = conv_forward(x, p[f"{conv}.weight"], stride, pad, groups)
    y, c2 = bn_forward(y, p, bn, train)
    mask = None
    if relu:
        y, mask = relu_forward(y)
    return y, (conv, c1, c2, mask)


def conv_bn_backward(dout, cache, grads):
    conv, c1, c2, mask = cache
    if mask is not None:
        dout = relu_backward(dout, mask)
    dout, g = bn_backward(dout, c2)
    grads.update(g)
    dx, grads[f"{conv}.weight"] = conv_backward(dout, c1)
    return dx


def block_plan(arch):
    """(name, stride, groups, projection?) of every bottleneck block, in order. A block's
    widths need not be listed: the weights' shapes carry them. Stage N (layerN) strides by 2
    from N = 2 on, in its first block, which also projects the shortcut."""
    return [(f"layer{n + 1}.{i}", 2 if (i == 0 and n > 0) else 1, arch.cardinality, i == 0)
            for n, depth in enumerate(arch.depths) for i in range(depth)]


def forward(params, x, arch, train=False):
    """Logits (N, classes) and the caches the backward reads. docs/bottleneck.md draws the block."""
    p, caches = params, []
    if arch.stem == "plain":                                     # 7x7/2 conv, BN, ReLU, 3x3/2 max-pool
        y, c = conv_bn(x, p, "conv1", "bn1", train, stride=2, pad=3)
        caches.append(("stem", c))
        y, c = maxpool_forward(y)
        caches.append(("maxpool", c))
    elif arch.stem == "cifar":                                   # 3x3/1 conv, BN, ReLU
        y, c = conv_bn(x, p, "conv1", "bn1", train, pad=1)
        caches.append(("stem", c))
    else:
        raise ValueError(f"minimal.py has the plain and cifar stems, not {arch.stem!r} (see plan.py)")
    for b, stride, groups, project in block_plan(arch):
        z, c1 = conv_bn(y, p, f"{b}.conv1", f"{b}.bn1", train)                              # 1x1, in -> width
        z, c2 = conv_bn(z, p, f"{b}.conv2", f"{b}.bn2", train, stride, 1, groups)           # 3x3, C groups
        z, c3 = conv_bn(z, p, f"{b}.conv3", f"{b}.bn3", train, relu=False)                  # 1x1, width -> out
        cs = None
        if project:                                              # 1x1 projection to the new shape
            y, cs = conv_bn(y, p, f"{b}.downsample.0", f"{b}.downsample.1", train, stride, relu=False)
        y, mask = relu_forward(z + y)                            # the residual sum, then ReLU
        caches.append(("block", (c1, c2, c3, cs, mask)))
    logits, c = fc_forward(y, p)
    caches.append(("head", c))
    return logits, caches


def backward(dlogits, caches):
    """Gradients of a loss with dloss/dlogits = ``dlogits``: "input" and every trainable
    parameter under its canonical name. The forward, read in reverse (grad.py does the same
    over the layer plan)."""
    grads = {}
    for kind, c in reversed(caches):
        if kind == "head":
            d, g = fc_backward(dlogits, c)
            grads.update(g)
        elif kind == "block":
            c1, c2, c3, cs, mask = c
            d = relu_backward(d, mask)                           # the sum hands d to both paths
            dz = conv_bn_backward(conv_bn_backward(conv_bn_backward(d, c3, grads), c2, grads), c1, grads)
            d = dz + (conv_bn_backward(d, cs, grads) if cs is not None else d)
        elif kind == "maxpool":
            d = maxpool_backward(d, c)
        else:
            d = conv_bn_backward(d, c, grads)
    grads["input"] = d
    return grads
