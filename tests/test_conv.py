"""conv.py: grouped conv2d against its seven-loop twin, im2col's documented column order,
the weight matrix, col2im as im2col's adjoint, memory layouts, dtypes, errors, no mutation.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpy_resnext.ops import naive
from numpy_resnext.ops.conv import conv2d
from numpy_resnext.ops.im2col import col2im, conv_output_size, im2col, weight_matrix
from numpy_resnext.errors import InputError, InputTypeError

from _arrays import LAYOUTS, assert_close, conv_cases, in_layout

RTOL64 = 1e-12


@given(case=conv_cases(max_hw=7), layout=st.sampled_from(LAYOUTS), wlayout=st.sampled_from(["nchw", "fortran"]),
       readonly=st.booleans())
def test_conv2d_matches_loops_float64(case, layout, wlayout, readonly):
    x0, w0, stride, padding, G, _ = case
    x, w = in_layout(x0, layout), in_layout(w0, wlayout)
    if readonly:                       # any write into an input would raise
        x.flags.writeable = False
        w.flags.writeable = False
    out = conv2d(x, w, stride=stride, padding=padding, groups=G)
    expected = naive.conv2d(x0, w0, stride=stride, padding=padding, groups=G)
    assert out.dtype == np.float64
    assert_close(out, expected)
    np.testing.assert_array_equal(x, x0)      # inputs untouched
    np.testing.assert_array_equal(w, w0)


@given(case=conv_cases(max_hw=5, dtype=np.float32), layout=st.sampled_from(LAYOUTS))
def test_conv2d_float32_in_float32_out(case, layout):
    x0, w, stride, padding, G, _ = case
    x = in_layout(x0, layout)
    out = conv2d(x, w, stride=stride, padding=padding, groups=G)
    assert out.dtype == np.float32
    expected = naive.conv2d(x.astype(np.float64), w.astype(np.float64), stride, padding, G)
    assert_close(out, expected, rtol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv2d_1x1_fast_path_odd_sizes(layout, stride, rng):
    """The ungrouped 1x1 convolution is a single GEMM; strides must subsample from pixel 0."""
    x0 = rng.standard_normal((2, 5, 7, 9))
    w0 = rng.standard_normal((6, 5, 1, 1))
    out = conv2d(in_layout(x0, layout), w0, stride=stride)
    assert_close(out, naive.conv2d(x0, w0, stride=stride))


def test_conv2d_resnext_grouped_3x3_shapes(rng):
    """The block's grouped 3x3 (32 groups, 4 channels each, stride 2, pad 1) on an odd size."""
    x0 = rng.standard_normal((1, 128, 5, 7))
    w0 = rng.standard_normal((128, 4, 3, 3))
    out = conv2d(x0, w0, stride=2, padding=1, groups=32)
    assert out.shape == (1, 128, 3, 4)
    assert_close(out, naive.conv2d(x0, w0, stride=2, padding=1, groups=32))


def test_groups_are_independent(rng):
    """Output group g depends only on input group g (a grouped conv is C separate convs)."""
    G, Cg, Kg = 4, 3, 2
    x = rng.standard_normal((1, G * Cg, 6, 6))
    w = rng.standard_normal((G * Kg, Cg, 3, 3))
    base = conv2d(x, w, padding=1, groups=G)
    x2 = x.copy()
    x2[:, Cg:2 * Cg] += 1.0                          # perturb input group 1 only
    diff = np.abs(conv2d(x2, w, padding=1, groups=G) - base).reshape(1, G, Kg, 6, 6).max(axis=(0, 2, 3, 4))
    assert diff[1] > 0 and np.all(np.delete(diff, 1) == 0), diff
    # and each group equals an ungrouped conv of its own slice
    for g in range(G):
        alone = conv2d(x[:, g * Cg:(g + 1) * Cg], w[g * Kg:(g + 1) * Kg], padding=1)
        assert_close(base[:, g * Kg:(g + 1) * Kg], alone)


# --- im2col, weight_matrix, col2im against the formula in conv.py's docstring ----------------
@given(case=conv_cases(max_group_channels=3), layout=st.sampled_from(LAYOUTS))
def test_im2col_column_order_is_the_documented_formula(case, layout):
    # cols[g, (n*OH + oh)*OW + ow, (r*S + s)*Cg + c] = xpad[n, g*Cg + c, oh*sh + r, ow*sw + s]
    x, (sh, sw), (ph, pw), G = case.x, case.stride, case.padding, case.groups
    R, S = case.w.shape[2:]
    OH, OW = case.out_shape[2:]
    N, C, H, W = x.shape
    Cg = C // G
    xpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    expected = np.empty((G, N * OH * OW, R * S * Cg))
    for g in range(G):
        for n in range(N):
            for oh in range(OH):
                for ow in range(OW):
                    for r in range(R):
                        for s in range(S):
                            for c in range(Cg):
                                expected[g, (n * OH + oh) * OW + ow, (r * S + s) * Cg + c] = \
                                    xpad[n, g * Cg + c, oh * sh + r, ow * sw + s]
    xin = in_layout(x, layout)
    cols = im2col(xin, (R, S), (sh, sw), (ph, pw), G)
    np.testing.assert_array_equal(cols, expected)
    np.testing.assert_array_equal(xin, x)


@given(G=st.integers(1, 3), Kg=st.integers(1, 3), Cg=st.integers(1, 3), R=st.integers(1, 3),
       S=st.integers(1, 3))
def test_weight_matrix_is_the_documented_formula(G, Kg, Cg, R, S):
    # Wmat[g, (r*S + s)*Cg + c, k] = w[g*Kg + k, c, r, s]
    w = np.arange(G * Kg * Cg * R * S, dtype=np.float64).reshape(G * Kg, Cg, R, S)
    wm = weight_matrix(w, G)
    assert wm.shape == (G, R * S * Cg, Kg)
    for g in range(G):
        for k in range(Kg):
            for c in range(Cg):
                for r in range(R):
                    for s in range(S):
                        assert wm[g, (r * S + s) * Cg + c, k] == w[g * Kg + k, c, r, s]


@given(case=conv_cases(max_hw=8, max_kernel=4, max_groups=4, max_group_channels=3))
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(x), Y> == <x, col2im(Y)> for every x and Y: the scatter-add undoes the gather.

    The two sums differ only by rounding, bounded by a few ulps of sum |im2col(x) * Y|.
    """
    x, (R, S), s, p, G = case.x, case.w.shape[2:], case.stride, case.padding, case.groups
    x0 = x.copy()
    cols = im2col(x, (R, S), s, p, G)
    y = case.rng.standard_normal(cols.shape)
    y0 = y.copy()
    back = col2im(y, x.shape, (R, S), s, p, G)
    assert back.shape == x.shape and back.dtype == x.dtype
    lhs, rhs = float(np.sum(cols * y)), float(np.sum(x * back))
    assert abs(lhs - rhs) <= RTOL64 * float(np.abs(cols * y).sum())
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(x, x0)


def test_col2im_counts_overlaps():
    """col2im of all-ones columns counts how many windows cover each pixel."""
    x_shape = (1, 1, 4, 4)
    cols = np.ones((1, 4, 9))                          # 3x3 kernel, stride 1, no pad: 2x2 windows
    counts = col2im(cols, x_shape, 3, 1, 0, 1)[0, 0]
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]], dtype=float)
    np.testing.assert_array_equal(counts, expected)


def test_conv_output_size_law():
    assert conv_output_size(224, 7, 2, 3) == 112
    assert conv_output_size(56, 3, 2, 1) == 28
    assert conv_output_size(7, 3, 2, 1) == 4
    assert conv_output_size(1, 7, 2, 3) == 1
    assert conv_output_size(2, 5, 1, 0) < 1            # no valid window


# --- errors: what was expected and what was found -------------------------------------------
def test_conv2d_rejects_wrong_rank():
    with pytest.raises(InputError, match=r"4-D.*found 3-D"):
        conv2d(np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(InputError, match=r"weight.*4-D.*found 2-D"):
        conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 3)))


def test_conv2d_rejects_channel_mismatch():
    with pytest.raises(InputError, match=r"expects 3 input channels.*input has 4"):
        conv2d(np.zeros((1, 4, 5, 5)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(InputError, match=r"groups=3 must divide input channels 4"):
        conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 1, 3, 3)), groups=3)
    with pytest.raises(InputError, match=r"expects 2 input channels with groups=2, input has 4"):
        conv2d(np.zeros((1, 4, 5, 5)), np.zeros((2, 1, 3, 3)), groups=2)
    with pytest.raises(InputError, match=r"groups=2 must divide .* output channels 3"):
        conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2)


def test_conv2d_rejects_too_small_input():
    with pytest.raises(InputError, match=r"2x2.*smaller than the 5x5 kernel"):
        conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 5, 5)))


def test_im2col_and_col2im_errors_name_expected_and_found():
    x = np.zeros((1, 4, 5, 5))
    with pytest.raises(InputError, match=r"im2col: groups=3 must divide the input channels 4"):
        im2col(x, 3, groups=3)
    with pytest.raises(InputError, match=r"im2col: groups=0 must divide"):
        im2col(x, 3, groups=0)
    with pytest.raises(InputError, match=r"im2col: input 5x5 with padding 0,0 is smaller than the 7x7 kernel"):
        im2col(x, 7)
    with pytest.raises(InputError, match=r"col2im: groups=3 must divide the input channels 4"):
        col2im(np.zeros((3, 9, 12)), x.shape, 3, groups=3)
    with pytest.raises(InputError, match=r"should have shape \(G, N\*OH\*OW, R\*S\*C/G\) = "
                                         r"\(1, 9, 36\), found \(1, 25, 36\)"):
        col2im(np.zeros((1, 25, 36)), x.shape, 3)


@pytest.mark.parametrize("stride,padding", [(0, 0), (1, -1), ((1, 0), 0)])
def test_conv2d_rejects_bad_stride_or_padding(stride, padding):
    with pytest.raises(InputError, match="stride"):
        conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=stride, padding=padding)


@pytest.mark.parametrize("dtype,kind", [(np.int64, "integer"), (np.uint8, "unsigned"),
                                        (np.complex128, "complex"), (np.bool_, "boolean"),
                                        (np.float16, "float16")])
def test_conv2d_rejects_non_float_input(dtype, kind):
    with pytest.raises(InputTypeError, match=rf"expected dtype float32 or float64, found .*{kind}"):
        conv2d(np.zeros((1, 1, 5, 5), dtype=dtype), np.zeros((1, 1, 3, 3)))


def test_conv2d_rejects_mixed_precision_and_non_arrays():
    with pytest.raises(InputTypeError, match=r"float32.*float64.*never mixes"):
        conv2d(np.zeros((1, 1, 5, 5), np.float32), np.zeros((1, 1, 3, 3), np.float64))
    with pytest.raises(InputTypeError, match=r"numpy.ndarray, found list"):
        conv2d([[[[0.0]]]], np.zeros((1, 1, 1, 1)))


def test_errors_are_also_builtin_exceptions():
    with pytest.raises(ValueError):
        conv2d(np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(TypeError):
        conv2d(np.zeros((1, 1, 5, 5), np.int32), np.zeros((1, 1, 3, 3)))


# --- a real framework, when installed --------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("shape,wshape,stride,padding,groups", [
    ((2, 3, 11, 9), (8, 3, 7, 7), 2, 3, 1),           # plain stem on an odd size
    ((1, 64, 7, 5), (64, 2, 3, 3), 2, 1, 32),         # grouped 3x3 with the stride
    ((2, 16, 6, 6), (8, 16, 1, 1), 2, 0, 1),          # projection shortcut
    ((1, 6, 5, 8), (6, 2, 2, 3), (1, 2), (1, 0), 3),  # non-square everything
])
def test_conv2d_matches_torch(torch, shape, wshape, stride, padding, groups, rng):
    x, w = rng.standard_normal(shape), rng.standard_normal(wshape)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride,
                                     padding=padding, groups=groups).numpy()
    assert_close(conv2d(x, w, stride=stride, padding=padding, groups=groups), ref)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kernel,groups", [(1, 1), (3, 1), (3, 2)])
def test_conv2d_output_is_channels_last_memory(layout, kernel, groups, rng):
    """As documented: an NCHW view whose (N, H, W, C) transpose is contiguous."""
    x = in_layout(rng.standard_normal((2, 4, 5, 6)), layout)
    out = conv2d(x, rng.standard_normal((6, 4 // groups, kernel, kernel)), padding=kernel // 2, groups=groups)
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous


def einsum_conv(x, w, stride, padding, groups):
    """An independent vectorised oracle: sliding windows contracted with einsum, per group axis."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    G, Kg = groups, K // groups
    OH, OW = conv_output_size(H, R, stride, padding), conv_output_size(W, S, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (R, S), axis=(2, 3))
    win = win[:, :, ::stride, ::stride][:, :, :OH, :OW]                 # N, C, OH, OW, R, S
    win = win.reshape(N, G, Cg, OH, OW, R, S)
    out = np.einsum("ngchwrs,gkcrs->ngkhw", win, w.reshape(G, Kg, Cg, R, S), optimize=True)
    return out.reshape(N, K, OH, OW)


@pytest.mark.parametrize("shape,K,R,stride,padding,groups", [
    ((2, 256, 22, 41), 256, 3, 2, 1, 32),   # columns of one image exceed a block: runs of rows
    ((2, 64, 40, 37), 64, 3, 1, 1, 32),
    ((3, 64, 20, 20), 64, 3, 1, 1, 32),     # several whole images per block, a short last block
    ((5, 3, 64, 63), 16, 7, 2, 3, 1),       # the 7x7 stem
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_realistic_sizes(shape, K, R, stride, padding, groups, dtype, rng):
    """Sizes large enough that the column matrix is gathered in several blocks."""
    x = rng.standard_normal(shape)
    w = rng.standard_normal((K, shape[1] // groups, R, R))
    out = conv2d(x.astype(dtype), w.astype(dtype), stride=stride, padding=padding, groups=groups)
    assert out.dtype == dtype
    assert_close(out, einsum_conv(x, w, stride, padding, groups), rtol=1e-12 if dtype == np.float64 else 1e-5)


def test_einsum_oracle_agrees_with_the_loops(rng):
    x, w = rng.standard_normal((2, 6, 7, 5)), rng.standard_normal((4, 3, 3, 3))
    assert_close(einsum_conv(x, w, 2, 1, 2), naive.conv2d(x, w, 2, 1, 2))


# --- block choice: groups in chunks, rows in blocks (column_blocks) ----------------------------
from numpy_resnext.ops import conv as conv_module  # noqa: E402


@pytest.mark.parametrize("budget,min_rows", [(None, None), (3000, None), (3000, 10**6), (1, 1)])
def test_conv2d_blocks_and_group_chunks_give_the_same_result(budget, min_rows, rng, monkeypatch):
    """Wide groups with a small cache budget run in chunks of groups: same values."""
    monkeypatch.setattr(conv_module, "l2_bytes", lambda: 4096)         # weights "exceed L2"
    monkeypatch.setattr(conv_module, "COLUMN_BLOCK_BYTES", budget)
    monkeypatch.setattr(conv_module, "MIN_ROWS", min_rows)
    x = rng.standard_normal((2, 48, 9, 11))
    w = rng.standard_normal((24, 6, 3, 3))
    out = conv2d(x, w, stride=2, padding=1, groups=8)
    assert_close(out, einsum_conv(x, w, 2, 1, 8), rtol=1e-12)


@pytest.mark.parametrize("N,OH,OW,G,K,Kg,budget", [
    (1, 56, 56, 32, 36, 4, 1 << 20),        # ResNeXt50 stage 1: every group, blocks of rows
    (1, 56, 56, 32, 432, 48, 1 << 20),      # 48-channel groups: one group at a time
    (8, 7, 7, 32, 576, 64, 1 << 20),        # several images per block
    (1, 7, 7, 32, 3456, 384, 1 << 20),      # one group's columns exceed the budget
])
def test_column_blocks_cover_every_row_once_and_respect_the_rules(N, OH, OW, G, K, Kg, budget, monkeypatch):
    monkeypatch.setattr(conv_module, "COLUMN_BLOCK_BYTES", budget)
    Gc, blocks = conv_module.column_blocks(N, OH, OW, G, K, Kg, 4)
    assert G % Gc == 0
    covered = np.zeros((N, OH), int)
    for n0, n1, oh0, oh1 in blocks:
        covered[n0:n1, oh0:oh1] += 1
        P = (n1 - n0) * (oh1 - oh0) * OW
        assert Gc * P * K * 4 <= budget or oh1 - oh0 == 1          # a single row may exceed it
    assert np.all(covered == 1)
    if Gc < G:          # chunking only when the weights exceed L2 and K rows of all groups do not fit
        assert G * K * Kg * 4 > conv_module.l2_bytes()
        assert G * min(K, N * OH * OW) * K * 4 > budget


def test_an_inf_in_one_group_stays_in_that_group_when_chunked(rng, monkeypatch):
    """Chunks of groups never mix groups: inf in group 0's input, no NaN in other groups."""
    monkeypatch.setattr(conv_module, "l2_bytes", lambda: 1024)
    monkeypatch.setattr(conv_module, "COLUMN_BLOCK_BYTES", 2000)
    G, Cg, Kg = 4, 6, 3
    x = rng.standard_normal((1, G * Cg, 8, 8))
    x[0, 2, 4, 4] = np.inf
    w = rng.standard_normal((G * Kg, Cg, 3, 3))
    out = conv2d(x, w, padding=1, groups=G).reshape(1, G, Kg, 8, 8)
    assert np.isfinite(out[:, 1:]).all()
    assert not np.isfinite(out[:, 0]).all()


@pytest.mark.parametrize("stride", [(2, 1), (1, 1)], ids=["dx-by-scatter", "dx-by-convolution"])
@pytest.mark.parametrize("budget,min_rows", [(None, None), (3000, None), (1, 1)])
def test_conv2d_backward_blocks_and_group_chunks_match_the_loops(budget, min_rows, stride, rng, monkeypatch):
    """The backward gathers the forward's blocks: its gradients match the loop twin's, with
    dx scattered back (stride 2) or computed as a convolution of dout (stride 1)."""
    monkeypatch.setattr(conv_module, "l2_bytes", lambda: 4096)
    monkeypatch.setattr(conv_module, "COLUMN_BLOCK_BYTES", budget)
    monkeypatch.setattr(conv_module, "MIN_ROWS", min_rows)
    x = rng.standard_normal((2, 24, 7, 9))
    w = rng.standard_normal((16, 6, 3, 3))
    dout = rng.standard_normal((2, 16, 4 if stride[0] == 2 else 7, 9))
    dx, dw = conv_module.conv2d_backward(dout, x, w, stride, 1, 4)
    ndx, ndw = naive.conv2d_backward(dout, x, w, stride, 1, 4)
    assert_close(dx, ndx, rtol=1e-12)
    assert_close(dw, ndw, rtol=1e-12)


def test_chunking_really_happens_in_the_chunk_tests(monkeypatch):
    """The monkeypatched cache sizes above do produce chunks of groups (else those tests
    would only check the unchunked path)."""
    monkeypatch.setattr(conv_module, "l2_bytes", lambda: 4096)
    monkeypatch.setattr(conv_module, "COLUMN_BLOCK_BYTES", 3000)
    Gc, _ = conv_module.column_blocks(2, 4, 9, 8, 54, 3, 8)
    assert Gc < 8
