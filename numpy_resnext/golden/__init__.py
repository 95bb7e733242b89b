"""Golden dumps: every named intermediate of a forward pass in one ``.npz``, and comparisons.

A golden dump is a plain NumPy ``.npz`` (a zip of ``.npy`` files, stored uncompressed) that
any language can read. Its members, in execution order:

    input.npy            the (N, 3, H, W) input the forward pass ran on
    conv1.npy ... fc.npy  every intermediate the forward emits (see :mod:`.shapes`), or the
                          ones a selection kept
    __manifest__.npy     uint8 bytes of a UTF-8 JSON manifest (architecture, dtype, versions,
                          weight and input sha256, per-tensor shape / dtype / sha256, the
                          execution order, suggested tolerances)

Comparison error, per tensor (reference r, candidate c, both read as float64)::

    max_abs = max |c - r|                                    over all elements
    max_rel = max_abs / max(max |r|, tiny)                   tiny = smallest normal float64
    pass    = max_abs <= atol + rtol * max |r|               (shapes equal but for size-1
                                                             axes, every difference finite)

This is a *norm-wise* criterion: the error of the whole tensor against its largest value.
An element-wise relative error would explode on the many values BN and ReLU push to (near)
zero, where a few ulps of absolute error are the right answer. ``atol`` only matters for
tensors that are (almost) all zero.

Name maps translate a candidate's tensor names (torch module names, Paddle layer names)
onto the names the forward pass emits; see :func:`load_map`.

The package's modules: :mod:`.manifest` (the manifest, writing, reading and verifying
files), :mod:`.dump` (running a model into a dump), :mod:`.names` (name maps) and
:mod:`.compare` (the comparison), :mod:`.coverage` (what a comparison covered: tensor kinds,
what a capture cannot hold, values overwritten in place) and :mod:`.capture` (a PyTorch
model's tensors under these names: :func:`torch_capture`, torch imported when called);
checksums are :mod:`numpy_resnext.checksums`.
"""

from ..checksums import file_sha256, params_sha256, tensor_sha256
from .capture import torch_capture
from .compare import TINY, Report, Row, compare, compare_tensor, default_tolerances
from .dump import golden_dump
from .manifest import (ERROR_DEFINITION, FORMAT, FORMAT_VERSION, INPUT_NAME, LOGITS_NAME, MANIFEST_KEY,
                       SUGGESTED_TOLERANCES, make_manifest, read_golden, tensor_record, verify_manifest,
                       write_golden)
from .names import MAPS_DIR, SHIPPED_MAPS, NameMap, load_map, parse_map

__all__ = ["ERROR_DEFINITION", "FORMAT", "FORMAT_VERSION", "INPUT_NAME", "LOGITS_NAME", "MANIFEST_KEY",
           "MAPS_DIR", "SHIPPED_MAPS", "SUGGESTED_TOLERANCES", "TINY", "NameMap", "Report", "Row",
           "compare", "compare_tensor", "default_tolerances", "file_sha256", "golden_dump", "load_map",
           "make_manifest", "params_sha256", "parse_map", "read_golden", "tensor_record",
           "tensor_sha256", "torch_capture", "verify_manifest", "write_golden"]
