"""Time numpy_resnext.io.read_paddle and the torch/safetensors readers on real ResNeXt50_32x4d weight files (~100 MB).

    python benchmarks/bench_load.py                 # files made in /tmp if missing
    python benchmarks/bench_load.py --repeats 9 --dir /tmp/bench_load --json out.json
    python benchmarks/bench_load.py --only torch    # torch.save / safetensors files only

What it does, so the figures can be judged:
- Needs Paddle only to *write* the files: paddle.vision.models.resnext50_32x4d() saved with
  paddle.save (pickle protocol 4, the default, and protocol 2) and paddle.jit.save (PIR
  .json + .pdiparams). They are made once in --dir (default /tmp/numpy_resnext_bench_load)
  and reused; nothing is committed. Reading never imports Paddle.
- Each reader runs once untimed (to warm the page cache, so the figure is the parser, not
  the disk), then --repeats rounds in which every reader runs once, in turn; the table
  shows median and fastest wall time and the throughput in MB/s. For comparison the same
  file through plain ``pickle.load`` (no allow-list, no checks) and
  ``paddle.load(return_numpy=True)``.
- Every read is checked against the first one (same names, bit-identical arrays), and the
  combined file's tensors (named through the sorted parameter names of the PIR program)
  against the .pdparams ones through its StructuredToParameterName@@ table.

- torch/safetensors: torch_capture.py's plain-torch ResNeXt50_32x4d (float32) written by
  torch.save (zip and legacy), as a checkpoint with an EMA copy (only one state dict is
  read) and by safetensors.torch.save_file, in --dir/torch; read with numpy_resnext's
  readers (``read_weights``: tensors under the file's names; ``load_weights``: with name
  mapping and checks) and, for comparison, torch.load(weights_only=True) and
  safetensors.numpy.load_file.

This is a hand-run script, never a test: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from numpy_resnext._files import atomic_write
from numpy_resnext.io import read_paddle

MAKE = """
import sys, paddle
out = sys.argv[1]
paddle.seed(0)
model = paddle.vision.models.resnext50_32x4d()
model.eval()
paddle.save(model.state_dict(), out + "/resnext50_32x4d.pdparams")
paddle.save(model.state_dict(), out + "/resnext50_32x4d_p2.pdparams", protocol=2)
paddle.jit.save(model, out + "/pir/resnext50_32x4d",
                input_spec=[paddle.static.InputSpec([1, 3, 224, 224], "float32", "x")])
"""


def make_files(directory: Path, python: str) -> None:
    if (directory / "pir" / "resnext50_32x4d.pdiparams").is_file():
        return
    directory.mkdir(parents=True, exist_ok=True)
    print(f"writing ResNeXt50_32x4d files with Paddle into {directory} ...", file=sys.stderr)
    subprocess.run([python, "-c", MAKE, str(directory)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def time_rounds(readers: dict, repeats: int) -> dict:
    """{label: [seconds]}: every reader once per round, so all see the same allocator and
    page-cache state (reading 100 MB right after freeing 100 MB is much cheaper than the
    first time, which would otherwise favour whichever reader runs later)."""
    for read in readers.values():
        read()  # warm the page cache
    times = {label: [] for label in readers}
    for _ in range(repeats):
        for label, read in readers.items():
            start = time.perf_counter()
            read()
            times[label].append(time.perf_counter() - start)
    return times


def check_same_model(pdparams: Path, prefix: Path) -> None:
    """The PIR combined file, named by sorted order, holds the pdparams tensors exactly."""
    by_key = read_paddle(pdparams)
    combined = read_paddle(prefix).tensors
    table = by_key.structured_to_param
    assert sorted(table.values()) == sorted(combined), "different parameter names"
    for key, name in table.items():
        assert np.array_equal(by_key.tensors[key], combined[name]), (key, name)
    print(f"check: {len(combined)} tensors of {prefix.name}.pdiparams (sorted-name order) "
          f"equal {pdparams.name} through its name table", file=sys.stderr)


MAKE_TORCH = """
import sys, torch
from safetensors.torch import save_file
sys.path.insert(0, sys.argv[2])
import torch_capture as tc
out = sys.argv[1]
model = tc.build("resnext50_32x4d").float()
tc.load_canonical(model, tc.make_weights(tc.canonical_shapes(model), 0))
sd = model.state_dict()
torch.save(sd, out + "/resnext50_32x4d.pth")
torch.save(sd, out + "/resnext50_32x4d_legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"epoch": 1, "state_dict": sd, "state_dict_ema": sd}, out + "/checkpoint.pth.tar")
save_file({k: v.contiguous() for k, v in sd.items()}, out + "/model.safetensors")
"""


def torch_readers(directory: Path, python: str):
    """(readers, sizes, counts) for the torch.save / safetensors files of ResNeXt50_32x4d,
    written once by torch (through ``python``) into ``directory``."""
    from numpy_resnext.io import load_weights, read_weights
    if not (directory / "model.safetensors").is_file():
        directory.mkdir(parents=True, exist_ok=True)
        print(f"writing ResNeXt50_32x4d files with torch into {directory} ...", file=sys.stderr)
        subprocess.run([python, "-c", MAKE_TORCH, str(directory),
                        str(Path(__file__).resolve().parent.parent / "reference")], check=True)
    readers, sizes, counts = {}, {}, {}
    for label, name in [("torch.save zip", "resnext50_32x4d.pth"),
                        ("torch.save legacy", "resnext50_32x4d_legacy.pth"),
                        ("checkpoint + EMA (one read)", "checkpoint.pth.tar"),
                        ("safetensors", "model.safetensors")]:
        path = directory / name
        tensors = read_weights(path).tensors
        readers[f"read_weights: {label}"] = lambda path=path: read_weights(path)
        sizes[f"read_weights: {label}"] = path.stat().st_size
        counts[f"read_weights: {label}"] = len(tensors)
    for name in ("resnext50_32x4d.pth", "model.safetensors"):
        path = directory / name
        readers[f"load_weights (+ names, checks): {name}"] = lambda path=path: load_weights(path)
        sizes[f"load_weights (+ names, checks): {name}"] = path.stat().st_size
    try:
        import torch
        pth = directory / "resnext50_32x4d.pth"
        readers["torch.load(weights_only=True): zip"] = lambda: torch.load(pth, weights_only=True)
        sizes["torch.load(weights_only=True): zip"] = pth.stat().st_size
        from safetensors.numpy import load_file
        st = directory / "model.safetensors"
        readers["safetensors.numpy.load_file"] = lambda: load_file(st)
        sizes["safetensors.numpy.load_file"] = st.stat().st_size
    except ImportError:
        pass
    return readers, sizes, counts


def array_readers(directory: Path):
    """(readers, sizes, counts) for the array files compare and --input read: an .npz of
    ResNeXt50_32x4d-sized tensors (read_golden, as compare reads a dump or a candidate) and
    a (16, 3, 224, 224) float32 .npy (load_npy, as --input / --dout), against np.load."""
    from numpy_resnext.commands._common import load_npy
    from numpy_resnext.golden import read_golden
    from numpy_resnext.params import init_params
    from numpy_resnext.archs import get_arch
    directory.mkdir(parents=True, exist_ok=True)
    npz, npy = directory / "resnext50_32x4d.npz", directory / "batch16.npy"
    if not npz.is_file():
        np.savez(npz, **dict(init_params(get_arch("ResNeXt50_32x4d"))))
        np.save(npy, np.random.default_rng(0).standard_normal((16, 3, 224, 224), np.float32))

    def np_load_npz():
        with np.load(npz) as z:
            return {k: z[k] for k in z.files}
    readers = {"read_golden (compare): .npz": lambda: read_golden(npz),
               "np.load, every member: .npz": np_load_npz,
               "load_npy (--input): .npy": lambda: load_npy(npy),
               "np.load: .npy": lambda: np.load(npy)}
    sizes = {k: (npz if ".npz" in k else npy).stat().st_size for k in readers}
    counts = {"read_golden (compare): .npz": len(read_golden(npz)[0])}
    return readers, sizes, counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/numpy_resnext_bench_load"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter with Paddle (and torch), used only to write the files")
    parser.add_argument("--only", choices=["paddle", "torch", "arrays"],
                        help="time only the Paddle files, the torch/safetensors files or the "
                             ".npz/.npy array files")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.only == "torch":
        readers, sizes, counts = torch_readers(args.dir / "torch", args.python)
        return report_times(readers, sizes, counts, args)
    if args.only == "arrays":
        return report_times(*array_readers(args.dir / "arrays"), args)
    make_files(args.dir, args.python)

    layouts = [("pdparams (pickle 4)", args.dir / "resnext50_32x4d.pdparams"),
               ("pdparams (pickle 2)", args.dir / "resnext50_32x4d_p2.pdparams"),
               ("pdiparams + PIR json", args.dir / "pir" / "resnext50_32x4d")]
    readers, sizes, counts = {}, {}, {}
    for label, path in layouts:
        first = read_paddle(path)
        again = read_paddle(path)
        assert list(again.tensors) == list(first.tensors)
        assert all(np.array_equal(a, b) for a, b in
                   zip(again.tensors.values(), first.tensors.values()))
        key = f"read_paddle: {label}"
        readers[key] = lambda path=path: read_paddle(path)
        sizes[key] = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        counts[key] = len(first.tensors)
        del first, again

    pd4 = layouts[0][1]
    check_same_model(pd4, layouts[2][1])

    def plain_pickle():
        with open(pd4, "rb") as f:
            return pickle.load(f)

    readers["plain pickle.load (unsafe): pickle 4"] = plain_pickle
    try:
        import paddle  # noqa: F401  (comparison only)
        readers["paddle.load(return_numpy): pickle 4"] = \
            lambda: paddle.load(str(pd4), return_numpy=True)
    except ImportError:
        pass
    for label in readers:
        sizes.setdefault(label, pd4.stat().st_size)
    if args.only is None:
        for more in (torch_readers(args.dir / "torch", args.python),
                     array_readers(args.dir / "arrays")):
            for mine, theirs in zip((readers, sizes, counts), more):
                mine.update(theirs)
    return report_times(readers, sizes, counts, args)


def report_times(readers, sizes, counts, args) -> int:
    times = time_rounds(readers, args.repeats)
    rows = [(label, sizes[label], times[label], counts.get(label)) for label in readers]

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"numpy {np.__version__}, {args.repeats} rounds after one warm-up")
    print(f"{'what':52s} {'MB':>7s} {'median s':>9s} {'min s':>7s} {'MB/s':>7s} tensors")
    report = []
    for label, size, times, count in rows:
        median = statistics.median(times)
        print(f"{label:52s} {size / 1e6:7.1f} {median:9.3f} {min(times):7.3f} "
              f"{size / 1e6 / median:7.0f} {count or ''}")
        report.append({"what": label, "bytes": size, "median_s": median, "min_s": min(times),
                       "times_s": times, "tensors": count})
    if args.json:
        text = json.dumps(report, indent=1) + "\n"
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
