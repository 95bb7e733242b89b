"""The element types weight files store, in one table, and how each format spells them.

=============  =====  =================  ===========  ======================
NumPy name     bytes  torch storage      safetensors  Paddle VarType (code)
=============  =====  =================  ===========  ======================
float64        8      DoubleStorage      F64          FP64 (6)
float32        4      FloatStorage       F32          FP32 (5)
float16        2      HalfStorage        F16          FP16 (4)
bfloat16       2      BFloat16Storage    BF16         BF16 (22)
int64          8      LongStorage        I64          INT64 (3)
int32          4      IntStorage         I32          INT32 (2)
int16          2      ShortStorage       I16          INT16 (1)
int8           1      CharStorage        I8           INT8 (21)
uint8          1      ByteStorage        U8           UINT8 (20)
uint16         2                         U16          UINT16 (36)
uint32         4                         U32          UINT32 (37)
uint64         8                         U64          UINT64 (38)
bool           1      BoolStorage        BOOL         BOOL (0)
complex64      8                                      COMPLEX64 (23)
complex128     16                                     COMPLEX128 (24)
float8_e4m3fn  1                                      FP8_E4M3FN (32)
float8_e5m2    1                                      FP8_E5M2 (33)
=============  =====  =================  ===========  ======================

NumPy has no bfloat16 and no float8: torch and safetensors bfloat16 tensors are read as
their 16 bits and widened exactly to float32 (:func:`widen_bfloat16`); the Paddle tensor
record refuses both by name, saying how to convert them. ``torch.UntypedStorage`` holds
bytes (:data:`TORCH_UNTYPED`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["DType", "TABLE", "NO_NUMPY", "TORCH_STORAGES", "TORCH_UNTYPED", "SAFETENSORS",
           "PADDLE", "itemsize", "widen_bfloat16", "narrow_bfloat16"]


class DType(NamedTuple):
    """One element type and its spelling in each format (None: the format has none)."""

    name: str                      # NumPy's name (bfloat16 and float8: no NumPy dtype)
    itemsize: int
    torch: str | None              # torch storage type
    safetensors: str | None        # safetensors dtype code
    paddle: tuple | None           # (VarType code, Paddle's name)


TABLE = (
    DType("float64", 8, "DoubleStorage", "F64", (6, "FP64")),
    DType("float32", 4, "FloatStorage", "F32", (5, "FP32")),
    DType("float16", 2, "HalfStorage", "F16", (4, "FP16")),
    DType("bfloat16", 2, "BFloat16Storage", "BF16", (22, "BF16")),
    DType("int64", 8, "LongStorage", "I64", (3, "INT64")),
    DType("int32", 4, "IntStorage", "I32", (2, "INT32")),
    DType("int16", 2, "ShortStorage", "I16", (1, "INT16")),
    DType("int8", 1, "CharStorage", "I8", (21, "INT8")),
    DType("uint8", 1, "ByteStorage", "U8", (20, "UINT8")),
    DType("uint16", 2, None, "U16", (36, "UINT16")),
    DType("uint32", 4, None, "U32", (37, "UINT32")),
    DType("uint64", 8, None, "U64", (38, "UINT64")),
    DType("bool", 1, "BoolStorage", "BOOL", (0, "BOOL")),
    DType("complex64", 8, None, None, (23, "COMPLEX64")),
    DType("complex128", 16, None, None, (24, "COMPLEX128")),
    DType("float8_e4m3fn", 1, None, None, (32, "FP8_E4M3FN")),
    DType("float8_e5m2", 1, None, None, (33, "FP8_E5M2")),
)
NO_NUMPY = frozenset(("bfloat16", "float8_e4m3fn", "float8_e5m2"))
BY_NAME = {d.name: d for d in TABLE}
TORCH_UNTYPED = "UntypedStorage"          # bytes; also torch.storage.UntypedStorage
# storage type -> element type; code -> element type; VarType code -> the table's row
TORCH_STORAGES = {**{d.torch: d.name for d in TABLE if d.torch}, TORCH_UNTYPED: "uint8"}
SAFETENSORS = {d.safetensors: d.name for d in TABLE if d.safetensors}
PADDLE = {d.paddle[0]: d for d in TABLE if d.paddle}


def itemsize(name: str) -> int:
    """Bytes per element of the element type ``name`` (bfloat16 included)."""
    return BY_NAME[name].itemsize


def widen_bfloat16(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32, exactly: bfloat16 is float32's top 16 bits."""
    return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)


def narrow_bfloat16(a) -> np.ndarray:
    """``a`` rounded to bfloat16 bits (uint16): the float32 bit pattern with its low 16 bits
    rounded away, to nearest, ties to even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
            >> np.uint32(16)).astype(np.uint16)
