"""Time a ResNeXt forward pass in NumPy, and in torch and Paddle when they can be imported.

    python benchmarks/bench_forward.py                       # ResNeXt50_32x4d, batch 1 and 8
    python benchmarks/bench_forward.py --batches 1 --repeats 11 --json out.json
    python benchmarks/bench_forward.py --keep-env            # keep OPENBLAS_* as they are

What it does, so the figures can be judged:
- Every lane (framework x dtype x batch) runs in its own child process holding a built
  model and a fixed input; the parent asks the lanes in turn for one timed forward, round
  after round, so a busy neighbour on a shared machine slows all lanes alike. A lane's turn
  is: a pause (--pause, 0.3 s) so the previous lane's spinning BLAS/OpenMP threads go idle,
  one untimed forward (--settle) that wakes the lane's own threads, then the timed forward,
  so each is measured in the steady state of back-to-back runs. Each lane also gets a
  warm-up forward at the start; ``--repeats`` timed forwards per lane; the table shows the
  median (and the fastest). Ratios are numpy median / framework median in
  the same run, and the median of the per-round ratios.
- The frameworks run the same network with the same weights: the NumPy model's seeded
  parameters are copied into a plain-torch ResNeXt written below (torchvision is not
  needed) and into paddle.vision's model, and the logits are compared before timing.
  torch runs twice, in NCHW and in channels-last memory ("torch-cl"); the numpy/torch
  ratio uses whichever was faster. torch runs under torch.no_grad, Paddle under
  paddle.no_grad, both in eval mode.
- GFLOP/s = 2 FLOP per multiply-accumulate (conv + fc, from numpy_resnext.shapes.totals)
  times the batch, over the median time.
- Memory: "peak RSS" is the lane process's resident high-water mark from the moment its
  model and input are built (Linux resets VmHWM when 5 is written to /proc/self/clear_refs;
  elsewhere it is ru_maxrss, the whole process's, and the table says so), so a build that
  briefly held more (the seeded WSL models calibrate in float64) does not count; "+fwd" is
  that peak minus the resident size just before the first forward, i.e. what the forward
  passes added. For NumPy also "traced": tracemalloc's peak of the NumPy allocations during
  one (untimed) forward. The --targets summary states the 32x48d forward's peak against
  its weights (target: at most weights + 1 GB).
- OpenBLAS: if OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE are set (this machine pins them for
  older OpenBLAS builds) the script re-executes itself without them unless --keep-env is
  given, and prints the OpenBLAS kernel (corename) and thread count each lane runs with.

This is a hand-run script, never a test: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time

import numpy_resnext.ops.conv as conv
import numpy_resnext.ops.cpu as cpu
from numpy_resnext.archs import get_arch
from numpy_resnext.plan import layer_plan

PINNED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REEXEC_MARK = "NUMPY_RESNEXT_BENCH_UNSET"


# --- the same network in plain torch ---------------------------------------------------
def torch_resnext(config):
    """A torch ResNeXt (plain 7x7 stem, projection shortcuts) whose parameter names are the
    canonical torchvision ones, built from the NumPy model's ArchConfig."""
    import torch.nn as nn

    class Bottleneck(nn.Module):
        def __init__(self, block):
            super().__init__()
            w, out = block.width, block.out_channels
            self.conv1 = nn.Conv2d(block.in_channels, w, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(w)
            self.conv2 = nn.Conv2d(w, w, 3, block.stride, 1, groups=block.groups, bias=False)
            self.bn2 = nn.BatchNorm2d(w)
            self.conv3 = nn.Conv2d(w, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if block.shortcut != "identity":
                self.downsample = nn.Sequential(
                    nn.Conv2d(block.in_channels, out, 1, block.stride, bias=False), nn.BatchNorm2d(out))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            stages = {}
            for b in layer_plan(config).blocks:
                stages.setdefault(b.name.split(".")[0], []).append(Bottleneck(b))
            for name, blocks in stages.items():
                setattr(self, name, nn.Sequential(*blocks))
            self.stage_names = list(stages)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(config.num_features, config.num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for name in self.stage_names:
                x = getattr(self, name)(x)
            return self.fc(self.avgpool(x).flatten(1))

    return Net()


PADDLE_MODELS = {"ResNeXt50_32x4d": "resnext50_32x4d", "ResNeXt50_64x4d": "resnext50_64x4d",
                 "ResNeXt101_32x4d": "resnext101_32x4d", "ResNeXt101_64x4d": "resnext101_64x4d",
                 "ResNeXt152_32x4d": "resnext152_32x4d", "ResNeXt152_64x4d": "resnext152_64x4d"}


# --- lanes: one child process per (framework, dtype, batch) -----------------------------
def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak():
    """Start the resident high-water mark afresh (Linux: writing 5 to /proc/self/clear_refs
    resets VmHWM), so the peak measured afterwards is the forwards', not the build's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_bytes():
    """VmHWM (the resident high-water mark) from /proc/self/status, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    parts = []
    for lib in threadpool_info():
        arch = lib.get("architecture") or lib.get("corename") or ""
        parts.append(f"{lib['internal_api']} {lib.get('version') or ''} {arch} x{lib['num_threads']}".replace("  ", " "))
    return "; ".join(parts) or "none found"


def _build_lane(framework, arch, dtype, batch, size, seed, threads, backward=False):
    """Return (run() -> logits as a NumPy array, versions string, bytes of the weights).

    backward: run() is a forward and backward pass with training-mode BatchNorm
    (numpy_resnext.grad.gradients against torch autograd), for a fixed dloss/dlogits."""
    import numpy as np

    from numpy_resnext.model import build

    model = build(arch, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, size, size)).astype(dtype)
    dlogits = rng.standard_normal((batch, model.config.num_classes)).astype(dtype)
    if framework == "numpy":
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(threads)
        except ImportError:
            pass
        if backward:
            from numpy_resnext.grad import gradients
            return (lambda: gradients(model, x, dlogits, train=True).logits), f"numpy {np.__version__}"
        return (lambda: model(x)), f"numpy {np.__version__}"
    if framework in ("torch", "torch-cl"):
        import torch
        torch.set_num_threads(threads)
        with torch.device("meta"):      # no second copy of the weights: the torch
            net = torch_resnext(model.config)     # parameters share the NumPy arrays' memory
        state = {k: torch.from_numpy(v) for k, v in model.params.items()}
        missing, unexpected = net.load_state_dict(state, strict=False, assign=True)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise RuntimeError(f"torch model does not match: missing {missing}, unexpected {unexpected}")
        for name, buf in list(net.named_buffers()):
            if buf.is_meta:             # num_batches_tracked: a counter torch keeps
                mod = net.get_submodule(name.rpartition(".")[0])
                setattr(mod, name.rpartition(".")[2], torch.zeros((), dtype=torch.long))
        net = net.to(getattr(torch, dtype))
        xt = torch.from_numpy(x)
        if framework == "torch-cl":     # channels-last memory, NumPy's own layout
            net = net.to(memory_format=torch.channels_last)
            xt = xt.contiguous(memory_format=torch.channels_last)
        if backward:
            net.train()
            import copy
            running = copy.deepcopy({k: v for k, v in net.state_dict().items() if "running" in k})
            xg = xt.clone().requires_grad_(True)
            dl = torch.from_numpy(dlogits)

            def fwd_bwd():
                net.load_state_dict(running, strict=False)   # same statistics every run
                net.zero_grad(set_to_none=True)
                xg.grad = None
                y = net(xg)
                y.backward(dl)
                return y.detach().numpy()
            return fwd_bwd, f"torch {torch.__version__} autograd (intra-op threads {torch.get_num_threads()})"
        net.eval()

        def fwd():
            with torch.no_grad():
                return net(xt).numpy()
        return fwd, f"torch {torch.__version__} (intra-op threads {torch.get_num_threads()})"
    if framework == "paddle":
        import paddle
        paddle.set_device("cpu")
        net = getattr(paddle.vision.models, PADDLE_MODELS[arch])(pretrained=False)
        rename = {"running_mean": "_mean", "running_var": "_variance"}
        state = {}
        for k, v in model.params.items():
            head, _, leaf = k.rpartition(".")
            state[f"{head}.{rename.get(leaf, leaf)}"] = v.T.copy() if k == "fc.weight" else v
        net.set_state_dict(state)
        if dtype == "float64":
            net.to(dtype="float64")
        net.eval()
        xp = paddle.to_tensor(x)

        def fwd():
            with paddle.no_grad():
                return net(xp).numpy()
        return fwd, f"paddle {paddle.__version__}"
    raise ValueError(framework)


def _build(framework, arch, dtype, batch, size, seed, threads, backward=False):
    """:func:`_build_lane`'s (run, versions) and the bytes of the model's weights."""
    import numpy as np

    from numpy_resnext.params import param_shapes

    run, versions = _build_lane(framework, arch, dtype, batch, size, seed, threads, backward)
    n = sum(int(np.prod(shape)) for shape in param_shapes(get_arch(arch)).values())
    return run, versions, n * np.dtype(dtype).itemsize


def _lane(conn, framework, arch, dtype, batch, size, seed, threads, backward=False):
    """Child process: build, then answer 'time' / 'logits' / 'memory' / 'quit' requests."""
    if framework == "paddle":     # Paddle's CPU kernels take their thread count from OpenMP
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        fwd, versions, weight_bytes = _build(framework, arch, dtype, batch, size, seed, threads, backward)
        rss_before = _rss_bytes()                                # model and input built
        peak_reset = _reset_peak()
        logits = fwd()                                           # warm-up
    except Exception as e:   # report, don't hang the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", {"versions": versions, "blas": _blas_info()}))
    while True:
        cmd = conn.recv()
        if cmd in ("time", "cpu"):      # wall time, or this process's CPU time (all threads)
            clock = time.perf_counter if cmd == "time" else time.process_time
            t = clock()
            fwd()
            conn.send(clock() - t)
        elif cmd == "logits":
            conn.send(logits)
        elif cmd == "memory":
            info = {"peak_rss": _peak_bytes(), "rss_before": rss_before, "peak_reset": peak_reset,
                    "weight_bytes": weight_bytes}
            if framework == "numpy":
                import tracemalloc
                tracemalloc.start()
                fwd()
                info["traced_peak"] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            conn.send(info)
        else:
            return


class Lane:
    def __init__(self, framework, dtype, batch, args):
        self.framework, self.dtype, self.batch = framework, dtype, batch
        self.name = f"{framework} {dtype}"
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_lane, args=(child, framework, args.arch, dtype, batch, args.size,
                                                    args.seed, args.threads, args.backward), daemon=True)
        restore = removed_pins() if framework == "paddle" else {}
        os.environ.update(restore)           # a spawned child copies the parent's environment
        try:
            self.proc.start()
        finally:
            for k in restore:
                del os.environ[k]
        self.times, self.info, self.error = [], {}, None

    def wait_ready(self):
        status, payload = self.conn.recv()
        if status == "error":
            self.error = payload
        else:
            self.info.update(payload)

    def ask(self, cmd):
        self.conn.send(cmd)
        return self.conn.recv()

    def close(self):
        if self.proc.is_alive():
            self.conn.send("quit")
        self.proc.join(timeout=30)


def removed_pins():
    """The OPENBLAS_* settings the re-execution removed, as a dict (empty if none).

    The Paddle lane gets them back: Paddle bundles its own OpenBLAS 0.3.15, which without
    OPENBLAS_CORETYPE picks its slow generic "Barcelona" kernels on this CPU; the NumPy
    (OpenBLAS 0.3.31) and torch lanes run without them."""
    text = os.environ.get(REEXEC_MARK, "")
    return dict(item.split("=", 1) for item in text.split(", ") if "=" in item)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (and lscpu's count), or platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f", {os.cpu_count()} CPUs"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def block_choices(config, args):
    """conv2d's block choice (numpy_resnext.ops.conv.column_blocks) for each distinct grouped
    convolution of the network at the first batch size, as printable lines."""
    import numpy as np

    from numpy_resnext.plan import layer_plan
    from numpy_resnext.shapes import output_shapes

    out_hw = {r["name"]: r["shape"][1:] for r in output_shapes(config, args.size, args.size) if len(r["shape"]) == 3}
    seen = []
    N = args.batches[0]
    for layer in layer_plan(config).convs():
        if layer.groups == 1:
            continue
        OH, OW = out_hw[layer.name]
        K = layer.kernel * layer.kernel * layer.in_channels // layer.groups
        key = (layer.in_channels, OH, layer.stride)
        if key in seen:
            continue
        seen.append(key)
        Gc, blocks = conv.column_blocks(N, OH, OW, layer.groups, K, layer.out_channels // layer.groups,
                                        np.dtype(args.dtype).itemsize)
        n0, n1, oh0, oh1 = blocks[0]
        yield (f"{layer.name} ({layer.in_channels} channels, {layer.groups} groups, output {OH}x{OW}, "
               f"batch {N}): {layer.groups // Gc} chunk(s) of {Gc} groups x {len(blocks)} blocks of "
               f"{(n1 - n0) * (oh1 - oh0) * OW} rows (column budget {conv.column_budget() >> 10} KB)")


def importable(name):
    import importlib.util
    return importlib.util.find_spec(name) is not None


# --- the run ---------------------------------------------------------------------------
def run(args):
    import numpy as np

    sys.stdout.reconfigure(line_buffering=True)     # keep order with the lanes' stderr

    from numpy_resnext.shapes import totals

    config = get_arch(args.arch)
    _, macs = totals(config, args.size, args.size)
    frameworks = ["numpy"]
    skipped = {}
    for fw in ("torch", "paddle"):
        if fw in args.skip:
            skipped[fw] = "skipped (--skip)"
        elif not importable(fw):
            skipped[fw] = "not importable"
        elif fw == "torch" and config.stem != "plain":
            skipped[fw] = f"the torch lane builds plain-stem models only ({args.arch} has a {config.stem} stem)"
        elif fw == "paddle" and args.arch not in PADDLE_MODELS:
            skipped[fw] = f"paddle.vision has no {args.arch}"
        else:
            frameworks += [{"nchw": "torch", "cl": "torch-cl"}[l] for l in args.layouts] if fw == "torch" else [fw]
    specs = [(fw, args.dtype, b) for b in args.batches for fw in frameworks]
    other = "float64" if args.dtype == "float32" else "float32"
    if not args.no_dtype_ratio:
        specs += [("numpy", other, b) for b in args.batches]

    what = "forward + backward (training BN)" if args.backward else "forward"
    print(f"bench_forward: {config.name} {what}, {args.dtype}, {args.size}x{args.size}, batches {args.batches}, "
          f"{args.repeats} timed runs after {args.warmup} warm-up, {args.threads} threads per lane")
    if hasattr(conv, "column_blocks"):
        print(f"  CPU           {cpu_model()}; L2 {cpu.cache_size(2, 0) >> 10} KB per core (sysfs)")
        for line in block_choices(config, args):
            print(f"  blocks        {line}")
    else:       # an older engine (timing the code before a change)
        print(f"  CPU           {cpu_model()}; blocks of {conv.COLUMN_BLOCK_BYTES >> 10} KB (fixed)")
    removed = os.environ.get(REEXEC_MARK)
    kept = {k: os.environ[k] for k in PINNED_ENV if k in os.environ}
    print(f"  env           {'removed ' + removed if removed else 'nothing removed'}"
          f"{'; kept ' + str(kept) if kept else ''}")
    print(f"  clock         {'CPU time of each lane process' if args.clock == 'cpu' else 'wall time'}")
    print(f"  machine       {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    if removed and "paddle" in frameworks:
        print(f"  paddle lane   keeps {removed} (its bundled OpenBLAS 0.3.15 needs them on this CPU)")
    for fw, why in skipped.items():
        print(f"  {fw:13s} {why}")

    lanes = [Lane(fw, dt, b, args) for fw, dt, b in specs]
    for lane in lanes:                       # started together, built in parallel, checked in turn
        lane.wait_ready()
    for lane in lanes:
        if lane.error:
            print(f"  lane {lane.name} batch {lane.batch} failed: {lane.error}")
    live = [l for l in lanes if not l.error]
    seen = set()
    for lane in live:
        if lane.framework not in seen and lane.framework != "torch-cl":
            seen.add(lane.framework)
            print(f"  {lane.framework:13s} {lane.info['versions']}; BLAS/OpenMP: {lane.info['blas']}")

    # same network: every lane's logits against the NumPy lane of its dtype and batch
    checks = {}
    for lane in live:
        ref = next((l for l in live if l.framework == "numpy" and l.dtype == lane.dtype and l.batch == lane.batch), None)
        if lane.framework != "numpy" and ref is not None:
            a, b = ref.ask("logits"), lane.ask("logits")
            checks[(lane.framework, lane.dtype, lane.batch)] = float(np.abs(a - b).max() / np.abs(a).max())
    for (fw, dt, b), err in checks.items():
        print(f"  check         {fw} {dt} batch {b} logits vs numpy: max |diff| / max |logit| = {err:.2e}")

    # Before every timed forward: a pause, since BLAS/OpenMP worker threads of the lane that
    # just ran keep spinning for up to ~0.1-0.2 s (OpenBLAS, Intel OpenMP) and would slow
    # the next; then --settle untimed forwards in the same lane, which wake its own threads
    # so the timed one runs in the steady state that back-to-back runs measure.
    for _ in range(args.warmup - 1):         # the lanes already ran one warm-up forward
        for lane in live:
            lane.ask("time")
    for r in range(args.repeats):            # interleaved rounds
        for lane in live:
            time.sleep(args.pause)
            for _ in range(args.settle):
                lane.ask("time")
            lane.times.append(lane.ask(args.clock))
    for lane in live:
        lane.info.update(lane.ask("memory"))
        lane.close()

    rows = []
    for lane in live:
        med = float(np.median(lane.times))
        rows.append(dict(framework=lane.framework, dtype=lane.dtype, batch=lane.batch,
                         median_ms=med * 1e3, min_ms=min(lane.times) * 1e3,
                         times_ms=[t * 1e3 for t in lane.times],
                         gflops=2 * macs * lane.batch / 1e9 / med,
                         peak_rss_mb=lane.info["peak_rss"] / 2**20, peak_reset=lane.info["peak_reset"],
                         weights_mb=lane.info["weight_bytes"] / 2**20,
                         fwd_rss_mb=(lane.info["peak_rss"] - lane.info["rss_before"]) / 2**20,
                         traced_peak_mb=lane.info.get("traced_peak", 0) / 2**20 or None,
                         versions=lane.info["versions"], blas=lane.info["blas"]))
    ratios = _ratios(rows, args.dtype, other)
    _print_table(rows, ratios)
    print(f"  load average {os.getloadavg()[0]:.1f} at the end; medians on a shared machine vary run to run")
    if args.json:
        from numpy_resnext.commands._common import atomic_write
        doc = dict(arch=config.name, size=args.size, repeats=args.repeats, threads=args.threads,
                   env_removed=removed, env_kept=kept, macs_per_image=macs, skipped=skipped,
                   logits_check={f"{fw} {dt} batch {b}": e for (fw, dt, b), e in checks.items()},
                   rows=rows, ratios=ratios)

        def write(tmp):
            with open(tmp, "w") as f:
                json.dump(doc, f, indent=1)
        atomic_write(args.json, write)
        print(f"  wrote {args.json}")
    return dict(rows=rows, ratios=ratios)


def _ratios(rows, dtype, other):
    """numpy/torch (the faster of torch's NCHW and channels-last lanes), numpy/paddle (same
    dtype) and numpy float64/float32, per batch: the ratio of the medians, and the median
    of the per-round ratios (the lanes of one round ran back to back, so a busy neighbour
    tends to slow both sides of a pair alike)."""
    import numpy as np

    by = {(r["framework"], r["dtype"], r["batch"]): r for r in rows}

    def entry(what, dt, b, num, den):
        paired = np.median(np.array(num["times_ms"]) / np.array(den["times_ms"]))
        return dict(what=what, dtype=dt, batch=b, ratio=num["median_ms"] / den["median_ms"],
                    paired_ratio=float(paired))

    out = []
    for (fw, dt, b), r in by.items():
        if fw == "torch-cl" and ("torch", dt, b) in by:
            continue                    # handled with the NCHW lane: the faster one counts
        cl = by.get(("torch-cl", dt, b))
        if fw == "torch" and cl is not None and cl["median_ms"] < r["median_ms"]:
            fw, r = "torch-cl", cl
        if fw != "numpy" and ("numpy", dt, b) in by:
            out.append(entry(f"numpy/{fw}", dt, b, by[("numpy", dt, b)], r))
        if fw == "numpy" and dt == "float64" and ("numpy", "float32", b) in by:
            out.append(entry("numpy float64/float32", "", b, r, by[("numpy", "float32", b)]))
    return out


def _print_table(rows, ratios):
    print()
    since = "since the model was built" if all(r["peak_reset"] for r in rows) else "of the whole process"
    print(f"  peak RSS: resident high-water mark {since}; +fwd: that peak minus the resident size "
          f"before the first forward")
    print(f"  {'lane':16s} {'batch':>5s} {'median ms':>10s} {'min ms':>8s} {'GFLOP/s':>8s} "
          f"{'peak RSS MB':>11s} {'+fwd MB':>8s} {'traced MB':>9s}")
    for r in rows:
        traced = f"{r['traced_peak_mb']:9.0f}" if r["traced_peak_mb"] else f"{'-':>9s}"
        print(f"  {r['framework'] + ' ' + r['dtype']:16s} {r['batch']:5d} {r['median_ms']:10.1f} {r['min_ms']:8.1f} "
              f"{r['gflops']:8.1f} {r['peak_rss_mb']:11.0f} {r['fwd_rss_mb']:8.0f} {traced}")
    print()
    print(f"  {'ratio':22s} {'dtype':8s} {'batch':9s} {'of medians':>10s} {'per-round median':>17s}")
    for q in ratios:
        print(f"  {q['what']:22s} {q['dtype']:8s} batch {q['batch']:<3d} {q['ratio']:9.2f}x "
              f"{q['paired_ratio']:16.2f}x")
    print()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="ResNeXt50_32x4d")
    p.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1, 8],
                   help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--backward", action="store_true",
                   help="time forward + backward with training-mode BN (numpy_resnext.grad.gradients "
                        "against torch autograd) instead of the inference forward")
    p.add_argument("--layouts", default="nchw,cl",
                   help="torch memory layouts to run: nchw, cl (channels-last) or both (default)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=7, help="timed runs per lane (default 7, at least 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per lane first (default 1)")
    p.add_argument("--threads", type=int, default=2, help="threads per framework (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pause", type=float, default=0.3,
                   help="seconds of rest before each lane's turn, so the previous lane's threads sleep (default 0.3)")
    p.add_argument("--settle", type=int, default=1,
                   help="untimed forwards right before each timed one, same lane (default 1)")
    p.add_argument("--skip", default="", help="comma-separated frameworks not to run: torch,paddle")
    p.add_argument("--no-dtype-ratio", action="store_true", help="do not time NumPy in the other dtype")
    p.add_argument("--clock", choices=["time", "cpu"], default="time",
                   help="time: wall time (default); cpu: each lane's CPU time, steadier on a busy "
                        "machine but only comparable with --threads 1 (spinning BLAS/OpenMP threads count)")
    p.add_argument("--keep-env", action="store_true", help=f"keep {' and '.join(PINNED_ENV)} if set")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--targets", action="store_true",
                   help="run every target of the speed issue in turn (ResNeXt50 float32/float64, the "
                        "two WSL models, the backward) and print a summary; other options apply to each")
    args = p.parse_args(argv)
    if args.repeats < 5:
        p.error("--repeats must be at least 5 (the figures are medians)")
    args.warmup = max(1, args.warmup)
    args.skip = [s for s in args.skip.split(",") if s]
    args.layouts = [l for l in args.layouts.split(",") if l]
    if args.backward:
        args.skip = sorted(set(args.skip) | {"paddle"})
    return args


# The targets: (label, bench_forward arguments, numpy/torch ratio at most, what is
# compared). One command runs them all: python benchmarks/bench_forward.py --targets
TARGETS = [
    ("ResNeXt50_32x4d float32 forward", "--batches 1,8 --skip paddle --no-dtype-ratio", 1.25),
    ("ResNeXt50_32x4d float64 forward", "--batches 1,8 --dtype float64 --skip paddle --no-dtype-ratio", 1.0),
    ("ResNeXt101_32x8d_wsl float32 forward", "--arch ResNeXt101_32x8d_wsl --batches 1 --skip paddle "
     "--no-dtype-ratio", 1.0),
    ("ResNeXt101_32x48d_wsl float32 forward", "--arch ResNeXt101_32x48d_wsl --batches 1 --settle 0 "
     "--layouts nchw --skip paddle --no-dtype-ratio", 0.5),
    ("ResNeXt50_32x4d float32 forward+backward", "--backward --batches 4 --no-dtype-ratio", 2.0),
    ("ResNeXt50_32x4d float64 forward+backward", "--backward --batches 4 --dtype float64 --no-dtype-ratio", 2.0),
]


def run_targets(extra):
    """Every target in turn (each a bench_forward run), then one summary table."""
    summary, memory = [], []
    for label, argv, limit in TARGETS:
        print(f"=== {label} (target numpy/torch <= {limit}x)")
        result = run(parse_args(argv.split() + extra))
        for q in result["ratios"]:
            if q["what"].startswith("numpy/torch"):
                summary.append((label, q["batch"], q["ratio"], q["paired_ratio"], limit))
        if "32x48d" in label:
            memory.extend(r for r in result["rows"] if r["framework"] == "numpy")
    print(f"=== targets on {cpu_model()}")
    for label, b, ratio, paired, limit in summary:
        print(f"  {label:42s} batch {b:<2d} {ratio:6.2f}x (per-round {paired:5.2f}x)  target <= {limit}x: "
              f"{'met' if ratio <= limit else 'not met'}")
    for r in memory:
        extra_mb = r["peak_rss_mb"] - r["weights_mb"]
        print(f"  ResNeXt101_32x48d_wsl {r['dtype']} forward memory: peak RSS {r['peak_rss_mb']:.0f} MB = weights "
              f"{r['weights_mb']:.0f} MB + {extra_mb:.0f} MB (interpreter, libraries, input, forward; "
              f"{'since the build' if r['peak_reset'] else 'whole process'}); target <= weights + 1024 MB: "
              f"{'met' if extra_mb <= 1024 else 'not met'}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--targets" in argv:
        extra = [a for a in argv if a != "--targets"]
        pinned = [k for k in PINNED_ENV if k in os.environ]
        if pinned and "--keep-env" not in extra:
            env = {k: v for k, v in os.environ.items() if k not in PINNED_ENV}
            env[REEXEC_MARK] = ", ".join(f"{k}={os.environ[k]}" for k in pinned)
            os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + list(argv), env)
        return run_targets(extra)
    args = parse_args(argv)
    pinned = [k for k in PINNED_ENV if k in os.environ]
    if pinned and not args.keep_env:
        env = {k: v for k, v in os.environ.items() if k not in PINNED_ENV}
        env[REEXEC_MARK] = ", ".join(f"{k}={os.environ[k]}" for k in pinned)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + list(argv), env)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
