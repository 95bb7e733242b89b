"""What squeeze-and-excitation costs: the forward of seresnext50_32x4d (SE_ResNeXt50_32x4d)
against resnext50_32x4d (ResNeXt50_32x4d), in the same process, interleaved.

    python benchmarks/bench_se.py                         # float32, batch 1 and 8, 15 rounds
    python benchmarks/bench_se.py --batches 8 --rounds 21 --dtype float64 --json out.json
    python benchmarks/bench_se.py --clock cpu --breakdown   # a busy machine: CPU time, per op

Each round times one forward of each model, in alternating order (plain first in even
rounds), after one untimed forward of the same model, so both run in the steady state of
back-to-back forwards and a busy neighbour slows both alike. The table gives the medians,
the fastest, and the median of the per-round ratios SE / plain (the figure the issue's
target, at most 1.15x, is about). ``--breakdown`` then times, inside the SE model's
forward, every op kind (conv, bn, relu, add, pool, the SE layer's squeeze, fc, gate and
scale) with an ops object that wraps each call in a timer, to say where the difference goes.

The two models have the same convolutions; SE adds per block a global average pool over
bn3's output, two tiny fully connected layers, a sigmoid, and a channel-wise multiply of
bn3's output in place: two passes over the block's largest tensor, 0.06% more MACs.

This is a hand-run script, never a test: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy_resnext as nrx                                       # noqa: E402
from numpy_resnext.ops.cpu import cpu_name                       # noqa: E402
from numpy_resnext.walk import ArrayOps, walk                    # noqa: E402

PLAIN, SE = "resnext50_32x4d", "seresnext50_32x4d"


CLOCK = {"time": time.perf_counter, "cpu": time.process_time}


def once(model, x, clock=time.perf_counter) -> float:
    t = clock()
    model(x)
    return clock() - t


def rounds(models, x, n, clock=time.perf_counter):
    """{name: [seconds]} and the per-round ratios SE / plain."""
    times, ratios = defaultdict(list), []
    for r in range(n):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        got = {}
        for name in order:
            models[name](x)                                    # settle: the lane's own warm state
            got[name] = once(models[name], x, clock)
            times[name].append(got[name])
        ratios.append(got[SE] / got[PLAIN])
    return times, ratios


class TimedOps(ArrayOps):
    """ArrayOps that add each op's wall time to ``self.spent[op]``."""

    def __init__(self, params):
        super().__init__(params)
        self.spent = defaultdict(float)

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name in ("conv", "bn", "relu", "pool", "add", "global_pool", "fc", "squeeze", "se_fc",
                    "gate", "scale"):
            spent = super().__getattribute__("spent")

            def timed(*args):
                t = time.perf_counter()
                out = attr(*args)
                spent[name] += time.perf_counter() - t
                return out
            return timed
        return attr


def breakdown(model, x, n=5) -> dict:
    """{op: median milliseconds per forward} inside ``model``'s forward."""
    runs = defaultdict(list)
    for _ in range(n):
        ops = TimedOps(model.params)
        walk(model.plan, model.check_input(x), ops)
        for k, v in ops.spent.items():
            runs[k].append(v * 1e3)
    return {k: statistics.median(v) for k, v in runs.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, nargs="*", default=[1, 8])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--breakdown", action="store_true", help="time every op kind inside both forwards")
    p.add_argument("--clock", choices=list(CLOCK), default="time",
                   help="wall time, or the process's CPU time (all its threads: steadier on a busy machine)")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    models = {name: nrx.build(name, seed=0, dtype=a.dtype) for name in (PLAIN, SE)}
    print(f"CPU: {cpu_name()}; numpy {np.__version__}; {a.dtype}, {a.size}x{a.size}, {a.rounds} rounds, "
          f"{'CPU time' if a.clock == 'cpu' else 'wall time'}; load average {os.getloadavg()[0]:.1f}")
    out = dict(cpu=cpu_name(), numpy=np.__version__, dtype=a.dtype, size=a.size, rounds=a.rounds,
               clock=a.clock, load=os.getloadavg()[0], batches={})
    for batch in a.batches:
        x = np.random.default_rng(0).standard_normal((batch, 3, a.size, a.size)).astype(a.dtype)
        for m in models.values():
            m(x)                                               # warm-up
        times, ratios = rounds(models, x, a.rounds, CLOCK[a.clock])
        row = {name: dict(median_ms=1e3 * statistics.median(t), fastest_ms=1e3 * min(t)) for name, t in times.items()}
        row["ratio_median"] = statistics.median(ratios)
        row["ratio_of_medians"] = row[SE]["median_ms"] / row[PLAIN]["median_ms"]
        out["batches"][batch] = row
        print(f"batch {batch}: {PLAIN} {row[PLAIN]['median_ms']:.1f} ms (fastest {row[PLAIN]['fastest_ms']:.1f}), "
              f"{SE} {row[SE]['median_ms']:.1f} ms (fastest {row[SE]['fastest_ms']:.1f}); SE / plain: "
              f"median of ratios {row['ratio_median']:.3f}, ratio of medians {row['ratio_of_medians']:.3f}")
        if a.breakdown:
            for name, m in models.items():
                b = breakdown(m, x)
                row[name]["ops_ms"] = b
                print(f"  {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(b.items(), key=lambda kv: -kv[1])))
    out["load_after"] = os.getloadavg()[0]
    print(f"load average after: {out['load_after']:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
