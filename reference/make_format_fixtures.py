"""Write small Paddle weight files in every layout, with Paddle's own view of their tensors.

Run with the environment that has Paddle 3.3.1::

    /work/dev/bin/python reference/make_format_fixtures.py

Output (reference/fixtures/formats/, a few tens of KB in all):

=================================  ===========================================================
tiny_p4.pdparams / tiny_p2...      paddle.save(layer.state_dict()), pickle protocol 4 and 2
split_p2.pdparams                  a protocol 2 dict in the UnpackBigParamInfor@@ layout, cut by
                                   Paddle's own _unpack_saved_dict (threshold lowered, see below)
pir/tiny.json + tiny.pdiparams     paddle.jit.save (Paddle 3 default: PIR JSON program)
legacy/tiny.pdmodel + .pdiparams   paddle.jit.save with FLAGS_enable_pir_api=0 (ProgramDesc)
  (+ tiny.pdiparams.info)
static_dir/<param> ...             paddle.static.save_vars, one record file per parameter, plus
  (+ __model__)                    the program as a stray __model__ (readers must skip it)
static_dir.tar                     the same directory as a tar (how PaddleClas ships *.tar)
static_combined/__model__,         paddle.static.save_vars(filename="__params__") + the program
  __params__
single.record                      paddle.save(tensor, use_binary_format=True): one record
single.pdtensor                    paddle.save(tensor): a pickled (name, ndarray) tuple
tiny.pdopt                         paddle.save(Adam(...).state_dict()) after one step
*.expected.npz                     the tensors as Paddle holds them (state_dict / scope values),
                                   keyed as the reader should name them
=================================  ===========================================================

The tiny model mixes FP32 (conv, BN, linear), FP16 and FP64 parameters and an INT64 / INT32
persistable buffer, so every common record type is exercised; BN statistics are set to
random values so that an off-by-one in record order cannot go unnoticed, and twelve linear
layers (linear_0 ... linear_11) make string order differ from numeric order.

The legacy (non-PIR) files are written by this script re-running itself in a subprocess
with FLAGS_enable_pir_api=0, because the flag must be set before Paddle is imported.
MANIFEST.json (shared with other reference scripts) gets the keys "formats/..." only:
Paddle version, seed and the sha256 of every file.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))   # _manifest
from _manifest import MANIFEST, file_entry, save_npz, update_manifest, write_bytes  # noqa: E402

SEED = 20240531
ROOT = Path(__file__).resolve().parent
OUT = ROOT / "fixtures" / "formats"


def _npz(path: Path, arrays: dict) -> None:
    save_npz(path, {k: np.asarray(v) for k, v in arrays.items()})


def _tiny_layer(paddle):
    """Conv + BN + Linear in FP32, an FP16 and an FP64 parameter, INT64/INT32 buffers."""
    nn = paddle.nn

    class Tiny(nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2D(3, 4, 3, bias_attr=False)
            self.bn = nn.BatchNorm2D(4)
            self.fc = nn.Linear(4, 3)
            # linear_1 ... linear_11: Python's sorted() puts linear_10 before linear_2, which
            # is the order combined files use (a natural sort would misplace these tensors).
            self.stack = nn.Sequential(*[nn.Linear(3, 3) for _ in range(11)])
            self.w16 = self.create_parameter([2, 3], dtype="float16")
            self.w64 = self.create_parameter([3], dtype="float64")
            self.register_buffer("steps", paddle.to_tensor(np.array([7, -2**40, 3],
                                                                    np.int64)))
            self.register_buffer("table", paddle.to_tensor(np.arange(-3, 3, dtype=np.int32)
                                                           .reshape(2, 3)))

        def forward(self, x):
            y = self.stack(self.fc(self.bn(self.conv(x)).mean(axis=[2, 3])))
            # mean() rather than sum(): sum() fails in legacy (non-PIR) dy2static.
            extra = (self.w16.astype("float32").mean() + self.w64.astype("float32").mean()
                     + self.steps.astype("float32").mean()
                     + self.table.astype("float32").mean())
            return y + extra

    rng = np.random.default_rng(SEED)
    layer = Tiny()
    # Non-trivial values everywhere (defaults are zeros/ones for BN and the buffers).
    for name, value in layer.state_dict().items():
        if value.dtype in (paddle.float16, paddle.float32, paddle.float64):
            data = rng.standard_normal(value.shape)
            if name.endswith("_variance"):
                data = np.abs(data) + 0.5
            value.set_value(data.astype(value.numpy().dtype))
    layer.eval()
    return layer


def _spec(paddle):
    return [paddle.static.InputSpec([1, 3, 5, 5], "float32", name="x")]


def make_dygraph(paddle, out: Path) -> None:
    """pdparams (p4, p2, split), PIR jit.save and a binary single-tensor file."""
    paddle.seed(SEED)
    layer = _tiny_layer(paddle)
    state = layer.state_dict()
    by_key = {k: v.numpy() for k, v in state.items()}
    by_param = {v.name: v.numpy() for v in state.values()}
    for protocol in (4, 2):
        path = out / f"tiny_p{protocol}.pdparams"
        paddle.save(state, str(path), protocol=protocol)
        back = paddle.load(str(path), return_numpy=True)
        assert all(np.array_equal(back[k], by_key[k]) for k in by_key), path
    _npz(out / "tiny_pdparams.expected.npz", by_key)
    write_bytes(out / "tiny_names.json", (json.dumps(
        {k: v.name for k, v in state.items()}, indent=1) + "\n").encode())

    make_split(paddle, out, by_key)

    paddle.jit.save(layer, str(out / "pir" / "tiny"), input_spec=_spec(paddle))
    _npz(out / "tiny_by_param.expected.npz", by_param)

    tensor = paddle.to_tensor(np.random.default_rng(SEED + 1).standard_normal((2, 5))
                              .astype(np.float64))
    paddle.save(tensor, str(out / "single.record"), use_binary_format=True)
    _npz(out / "single.expected.npz", {"single.record": tensor.numpy()})
    # A bare tensor through paddle.save's pickle path: tuple((name, ndarray)).
    paddle.save(tensor, str(out / "single.pdtensor"))
    _npz(out / "single_pdtensor.expected.npz", {tensor.name: tensor.numpy()})

    make_pdopt(paddle, layer, out)


def make_pdopt(paddle, layer, out: Path) -> None:
    """An Adam state after one step (moments, beta powers and the LR scheduler's dict)."""
    scheduler = paddle.optimizer.lr.StepDecay(0.1, step_size=2)
    opt = paddle.optimizer.Adam(learning_rate=scheduler, parameters=layer.fc.parameters())
    layer.train()
    layer(paddle.ones([2, 3, 5, 5])).mean().backward()
    opt.step()
    state = opt.state_dict()
    paddle.save(state, str(out / "tiny.pdopt"))
    _npz(out / "tiny_pdopt.expected.npz",
         {k: v.numpy() for k, v in state.items() if isinstance(v, paddle.Tensor)})


def make_split(paddle, out: Path, by_key: dict) -> None:
    """A protocol 2 file cut into UnpackBigParamInfor@@ slices by Paddle's own code.

    Paddle splits arrays of more than (2**30 - 1) // itemsize elements, computed inline
    as ``int((2**30 - 1) / itemsize)`` inside ``_unpack_saved_dict``; there is no setting.
    To exercise that very function on tiny arrays, the module's ``int`` is shadowed for the
    duration of one call so that exactly this threshold expression yields 5 elements.
    """
    from paddle.framework import io_utils

    thresholds = {(2**30 - 1) / itemsize for itemsize in (1, 2, 4, 8)}

    def small_int(x=0, *args):
        if not args and isinstance(x, float) and x in thresholds:
            return 5
        return builtins.int(x, *args)

    obj = {k: v.copy() for k, v in by_key.items()}
    io_utils.int = small_int
    try:
        saved = io_utils._unpack_saved_dict(obj, 2)
    finally:
        del io_utils.int
    assert "UnpackBigParamInfor@@" in saved, "Paddle did not split anything"
    path = out / "split_p2.pdparams"
    write_bytes(path, pickle.dumps(saved, protocol=2))
    back = paddle.load(str(path), return_numpy=True)  # Paddle reassembles it itself
    assert all(np.array_equal(back[k], by_key[k]) for k in by_key), "paddle.load disagrees"
    write_bytes(out / "split_info.json", (json.dumps(
        {k: {"OriginShape": list(v["OriginShape"]), "slices": v["slices"]}
         for k, v in saved["UnpackBigParamInfor@@"].items()}, indent=1) + "\n").encode())


def make_legacy(paddle, out: Path) -> None:
    """Runs with FLAGS_enable_pir_api=0: legacy jit.save and static save_vars layouts."""
    paddle.seed(SEED)
    layer = _tiny_layer(paddle)
    paddle.jit.save(layer, str(out / "legacy" / "tiny"), input_spec=_spec(paddle))
    by_param = {v.name: v.numpy() for v in layer.state_dict().values()}
    _npz(out / "legacy_by_param.expected.npz", by_param)
    make_static(paddle, out)


def make_static(paddle, out: Path) -> None:
    """paddle.static.save_vars: one file per variable, and the combined __params__."""
    paddle.enable_static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        x = paddle.static.data("x", [1, 3, 5, 5], "float32")
        y = paddle.static.nn.conv2d(x, 4, 3, bias_attr=False, name="conv")
        y = paddle.static.nn.batch_norm(y, is_test=True, name="bn")
        paddle.static.nn.fc(paddle.mean(y, axis=[2, 3]), 3, name="fc")
        for name, shape, dtype in (("w_fp16", [2, 3], "float16"), ("w_fp64", [3], "float64"),
                                   ("w_int64", [4], "int64")):
            paddle.static.create_global_var(shape, 0, dtype, persistable=True, name=name)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    scope = paddle.static.global_scope()
    rng = np.random.default_rng(SEED + 2)
    expected = {}
    for var in main.list_vars():
        if not var.persistable or scope.find_var(var.name) is None:
            continue
        tensor = scope.find_var(var.name).get_tensor()
        current = np.array(tensor)
        if current.dtype.kind == "f":
            data = rng.standard_normal(current.shape).astype(current.dtype)
        else:
            data = rng.integers(-2**40, 2**40, current.shape).astype(current.dtype)
        tensor.set(data, paddle.CPUPlace())
        expected[var.name] = np.array(scope.find_var(var.name).get_tensor())
    per_file, combined = out / "static_dir", out / "static_combined"
    paddle.static.save_vars(exe, str(per_file), main, predicate=lambda v: v.persistable)
    paddle.static.save_vars(exe, str(combined), main, predicate=lambda v: v.persistable,
                            filename="__params__")
    program_bytes = main.desc.serialize_to_string()
    write_bytes(combined / "__model__", program_bytes)
    write_bytes(per_file / "__model__", program_bytes)
    # PaddleClas ships such a directory as <Name>_pretrained.tar with a top folder.
    with tarfile.open(out / "static_dir.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(per_file, arcname="static_dir", filter=_plain_member)
    saved = sorted(p.name for p in per_file.iterdir() if p.name != "__model__")
    assert saved == sorted(expected), (saved, sorted(expected))
    _npz(out / "static.expected.npz", expected)
    # Paddle reads its own per-file directory back (the files are what load_vars expects).
    for var in main.list_vars():
        if var.name in expected:
            scope.find_var(var.name).get_tensor().set(np.zeros_like(expected[var.name]),
                                                      paddle.CPUPlace())
    paddle.static.load_vars(exe, str(per_file), main, predicate=lambda v: v.persistable)
    for name, value in expected.items():
        assert np.array_equal(np.array(scope.find_var(name).get_tensor()), value), name
    paddle.disable_static()


def _plain_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Reproducible tar members: no owner, fixed time."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def record(out: Path, paddle_version: str) -> None:
    """Replace the "formats/" entries of the shared MANIFEST.json with one per file in ``out``."""
    entries = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        key = path.relative_to(MANIFEST.parent).as_posix()
        entries[key] = file_entry(path, paddle=paddle_version, seed=SEED,
                                  script="reference/make_format_fixtures.py")
    update_manifest("formats/", entries, replace=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--part", choices=["all", "dygraph", "legacy"], default="all",
                        help="'legacy' is run in a subprocess with FLAGS_enable_pir_api=0")
    parser.add_argument("--no-manifest", action="store_true",
                        help="do not touch MANIFEST.json (for writing to a scratch dir)")
    args = parser.parse_args(argv)
    out = args.out
    if args.part == "legacy":
        import paddle
        make_legacy(paddle, out)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; remove it first so no stale file survives")
    import paddle
    make_dygraph(paddle, out)
    if args.part == "all":
        env = dict(os.environ, FLAGS_enable_pir_api="0")
        subprocess.run([sys.executable, __file__, "--part", "legacy", "--out", str(out)],
                       env=env, check=True)
    if not args.no_manifest:
        record(out, paddle.__version__)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total} bytes) with Paddle {paddle.__version__}, seed {SEED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
