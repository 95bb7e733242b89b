"""Fully connected layer, y = x @ W^T + b, with W stored [out, in] as torch stores it.

Paddle's Linear stores W as [in, out] (y = x @ W + b); the weight readers transpose it
once on load, so every weight inside the package is [out, in].
"""


from .._checks import as_float_array, check_ndim, check_same_dtype
from ..errors import InputError


def linear(x, weight, bias=None):
    """(N, in) @ (out, in)^T + (out,) -> (N, out)."""
    x = as_float_array(x, "linear input")
    check_ndim(x, 2, "(N, features)", "linear input")
    as_float_array(weight, "linear weight")
    check_same_dtype(x, weight, "linear input", "linear weight")
    if weight.ndim != 2 or weight.shape[1] != x.shape[1]:
        raise InputError(f"linear: weight {weight.shape} expects [out, {x.shape[1]}] for input {x.shape}")
    y = x @ weight.T                                                    # N, out
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise InputError(f"linear: bias shape {bias.shape} should be ({weight.shape[0]},)")
        check_same_dtype(x, bias, "linear input", "linear bias")     # += would round silently
        y += bias
    return y


def linear_backward(dout, x, weight):
    """Gradients of :func:`linear`: returns (dx (N, in), dweight (out, in), dbias (out,))."""
    dx = dout @ weight                                                  # N, in
    dw = dout.T @ x                                                     # out, in
    return dx, dw, dout.sum(axis=0)
