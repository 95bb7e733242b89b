"""Time single grouped 3x3 convolutions (the shapes of the ResNeXt models) in NumPy, and
in torch when it can be imported, and print GFLOP/s and the block choice of conv2d.

    python benchmarks/bench_conv.py                        # every shape below, float32
    python benchmarks/bench_conv.py --shapes 48d.1,8d.1 --budgets 1,2 --min-rows 0,512
    python benchmarks/bench_conv.py --shapes 4d.1,4d.1b8 --parts   # time each step of conv2d alone

Each round times every variant (NumPy block settings, torch) once, in turn; the table
shows medians over --repeats rounds. Hand-run, never a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import numpy_resnext.ops.conv as conv
import numpy_resnext.ops.cpu as cpu
import numpy_resnext.ops.im2col as im2col

# name: (C = K, G, H = W of the input, stride, batch)
SHAPES = {
    "4d.1": (128, 32, 56, 1, 1), "4d.1b8": (128, 32, 56, 1, 8), "4d.3": (512, 32, 14, 1, 1),
    "4d.3b8": (512, 32, 14, 1, 8), "4d.4": (1024, 32, 7, 1, 1), "4d.4b8": (1024, 32, 7, 1, 8),
    "8d.1": (256, 32, 56, 1, 1), "8d.2": (512, 32, 28, 1, 1), "8d.3": (1024, 32, 14, 1, 1),
    "8d.4": (2048, 32, 7, 1, 1),
    "48d.1": (1536, 32, 56, 1, 1), "48d.2": (3072, 32, 28, 1, 1), "48d.3": (6144, 32, 14, 1, 1),
    "48d.4": (12288, 32, 7, 1, 1), "48d.2s": (3072, 32, 56, 2, 1),
}


def threads_setter():
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits
    except ImportError:
        return None


def parts(x, w, s, G, OH):
    """(label, run) for each step of conv2d's grouped path, as conv2d runs it (3x3, padding 1)."""
    N, C = x.shape[:2]
    Cg, Kg, Kd = C // G, w.shape[0] // G, 9 * (C // G)
    xg = im2col.group_major(x, G, 1, 1)
    rows = im2col._kernel_rows(xg, 3, s, OH)
    wmat = im2col.weight_matrix(w, G)
    Gc, blocks = conv.column_blocks(N, OH, OH, G, Kd, Kg, x.itemsize)
    buf = np.empty(max(Gc * (n1 - n0) * (b - a) * OH * Kd for n0, n1, a, b in blocks), dtype=x.dtype)
    out = np.empty((N, OH, OH, w.shape[0]), dtype=x.dtype)

    def each_block(step):
        for g0 in range(0, G, Gc):
            for n0, n1, oh0, oh1 in blocks:
                P = (n1 - n0) * (oh1 - oh0) * OH
                cols = buf[:Gc * P * Kd].reshape(Gc, n1 - n0, oh1 - oh0, OH, 3, 3 * Cg)
                step(g0, n0, n1, oh0, oh1, P, cols)

    def gather(g0, n0, n1, oh0, oh1, P, cols):
        im2col._gather(cols, rows, s, g0, n0, oh0)

    def matmul(g0, n0, n1, oh0, oh1, P, cols):
        o = out[n0:n1, oh0:oh1].reshape(P, G, Kg)[:, g0:g0 + Gc]
        np.matmul(cols.reshape(Gc, P, Kd), wmat[g0:g0 + Gc], out=o.transpose(1, 0, 2))
    return [("part: group-major copy of the input (group_major)", lambda: im2col.group_major(x, G, 1, 1)),
            ("part: gather of every block (R copies each)", lambda: each_block(gather)),
            ("part: block matmuls (columns already gathered)", lambda: each_block(matmul))]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--dtype", default="float32")
    p.add_argument("--budgets", default="0", help="column block MB to try, 0 = derived (default)")
    p.add_argument("--min-rows", default="0", help="minimum rows per matmul to try, 0 = derived")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--parts", action="store_true",
                   help="also time conv2d's steps alone: the group-major copy, the gather of every "
                        "block, the block matmuls (where a grouped convolution's time goes)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: process CPU time, steadier on a busy machine, meaningful with --threads 1")
    args = p.parse_args(argv)
    limit = threads_setter()
    if limit:
        limit(args.threads)
    torch = None
    if not args.skip_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"bench_conv: {args.clock} time, {args.dtype}, {args.threads} threads, L2 {cpu.cache_size(2, 0) >> 10} KB "
          f"(sysfs), medians of {args.repeats}, load average {os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(0)
    budgets = [float(b) for b in args.budgets.split(",")]
    min_rows = [int(m) for m in args.min_rows.split(",")]
    for name in args.shapes.split(","):
        C, G, H, s, N = SHAPES[name]
        x = rng.standard_normal((N, H, H, C), dtype=np.float64).astype(args.dtype).transpose(0, 3, 1, 2)
        w = (rng.standard_normal((C, C // G, 3, 3)) * 0.05).astype(args.dtype)
        OH = (H + 2 - 3) // s + 1
        flop = 2 * N * OH * OH * C * (C // G) * 9
        variants = []
        for b in budgets:
            for m in min_rows:
                def run(b=b, m=m):
                    conv.COLUMN_BLOCK_BYTES = int(b * 2**20) or None
                    conv.MIN_ROWS = m or None
                    return conv.conv2d(x, w, s, 1, G)
                conv.COLUMN_BLOCK_BYTES, conv.MIN_ROWS = int(b * 2**20) or None, m or None
                Gc, blocks = conv.column_blocks(N, OH, OH, G, 9 * (C // G), C // G, x.itemsize)
                P = (blocks[0][1] - blocks[0][0]) * (blocks[0][3] - blocks[0][2]) * OH
                variants.append((f"numpy budget {b or 'auto'} min_rows {m or 'auto'}: {G // Gc} chunks of "
                                 f"{Gc} groups, {len(blocks)} blocks of {P} rows", run))
        if args.parts:      # conv2d's three steps on their own, with the derived blocks
            variants += parts(x, w, s, G, OH)
        if torch is not None:
            xt = torch.from_numpy(np.ascontiguousarray(x)).contiguous(memory_format=torch.channels_last)
            wt = torch.from_numpy(w)

            def trun():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, None, s, 1, 1, G)
            variants.append(("torch channels-last", trun))
        times = [[] for _ in variants]
        for _, f in variants:
            f()
        for _ in range(args.repeats):
            for i, (_, f) in enumerate(variants):
                t = clock()
                f()
                times[i].append(clock() - t)
        conv.COLUMN_BLOCK_BYTES = conv.MIN_ROWS = None
        print(f"{name}: C={C} G={G} Cg={C // G} {H}x{H} stride {s} batch {N}, {flop / 1e9:.2f} GFLOP")
        for (label, _), ts in zip(variants, times):
            med = float(np.median(ts))
            print(f"   {med * 1e3:9.2f} ms {flop / med / 1e9:7.1f} GFLOP/s  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
