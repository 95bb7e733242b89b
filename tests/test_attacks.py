"""The attack suite: ~800 generated hostile, malformed and oversized inputs (tests/_attacks.py
for weight files, images and outputs; tests/_attacks_io.py for --input / --dout arrays,
compare's files, name patterns, torch and safetensors files and every command's output;
tests/_attacks_budget.py for what multiplies per-item bounds and for work that grows with
the input; tests/_attacks_terminal.py for what reaches the terminal, output targets, input
values and options; tests/_attacks_declared.py for a folder's config.json, SE files and
models, name-map dialects and --preprocess), each through the Python API and through the
commands that read it (``convert`` and ``forward`` for weight files, the command templates
a case names otherwise). Every one must end in a ResNeXtError whose message names the file and the
problem (CLI: exit status 2, one line, no traceback), within 10 s, with no code executed;
no control character (but the line breaks between lines) reaches stdout or stderr, no
printed line can be forged, no message is longer than 5,000 characters; and the workers'
peak memory stays under 1.2 GiB (they run under RLIMIT_AS of that size, so a regression
fails with MemoryError instead of exhausting the machine). A valid input that asks for
work (``completes``) may instead finish with exit status 0 or 1.

NUMPY_RESNEXT_ATTACK_TABLE=PATH writes a Markdown table per class (cases, sizes, the peak
resident memory of a case, the slowest case) to PATH; NUMPY_RESNEXT_ATTACK_CLASSES=a,b runs
only those classes (the others are then skipped).
"""

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _attacks  # noqa: E402
import _attacks_budget  # noqa: E402
import _attacks_declared  # noqa: E402
import _attacks_io  # noqa: E402
import _attacks_terminal  # noqa: E402
from _scratch import scratch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LIMIT = int(1.2 * 2 ** 30)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
CLASSES = ["pickle-shared-refs", "pickle-deep-key", "pickle-colliding-keys", "pickle-huge-key",
           "pickle-bad-shape", "pickle-length", "pickle-code-execution", "split-tensor", "name-table",
           "names-block-index", "names-many-blocks", "names-long", "names-implied-size", "record-dims",
           "record-dims-in-tar", "pir-structure", "pir-long-int", "pir-non-finite", "pir-deep", "pir-hostile-text",
           "tar-compression-bomb", "tar-member-size", "tar-sparse", "tar-damaged",
           "npy-header-size", "npz-header-size", "npy-dtype", "npz-deflate-bomb",
           "npz-truncated", "npz-bit-flip", "npz-member-kind", "npz-not-zip",
           "image-resize-size", "image-declared-size", "image-damaged", "special-fifo",
           "special-deep-dir", "special-symlink", "output", "corrupt-truncated", "corrupt-tar",
           "corrupt-bit-flip",
           # inputs beyond weight files, torch and safetensors, every command's output
           "input-npy", "dout-npy", "compare-candidate-npz", "compare-reference-npz",
           "compare-manifest-json", "map-json", "glob-backtracking", "special-fifo-inputs",
           "torch-pickle-shared-refs", "torch-pickle-deep", "torch-pickle-int-keys",
           "torch-pickle-huge-key", "torch-storage-size", "torch-zip-damaged",
           "safetensors-header-size", "safetensors-json", "safetensors-damaged",
           "output-commands",
           # one budget per load, bounded work (tests/_attacks_budget.py)
           "npz-many-members", "zip-shared-header", "torch-storage-views",
           "pickle-many-objects", "tar-big-record", "compute-size", "colliding-keys",
           "shard-symlinks", "map-many-patterns", "dataset-npz",
           # the terminal, output targets, input values, options (tests/_attacks_terminal.py)
           "terminal-control", "output-targets", "torch-empty-strides", "input-rank",
           "numeric-options", "long-messages", "nonfinite-inputs",
           # config.json beside the weights, SE files and models, name-map dialects and {last},
           # --preprocess (tests/_attacks_declared.py)
           *_attacks_declared.CLASSES]
GENERATORS = (_attacks.GENERATORS + _attacks_io.GENERATORS + _attacks_budget.GENERATORS
              + _attacks_terminal.GENERATORS + _attacks_declared.GENERATORS)
MAX_MESSAGE = 5000
ONLY = [c for c in os.environ.get("NUMPY_RESNEXT_ATTACK_CLASSES", "").split(",") if c]
ARRAY_APIS = ("compute", "dout")      # entry points handed arrays: no file to name


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    with scratch(tmp_path_factory, "attacks") as root:
        yield from _outcome(root)


def _outcome(root):
    try:
        cases = [c for gen in GENERATORS for c in gen(root)]
        if ONLY:
            cases = [c for c in cases if c["cls"] in ONLY]
    except BaseException:
        _attacks.remove_deep_dirs(root)
        raise
    # two workers, one per core; cases interleaved so the slow classes are shared
    batches = [cases[0::2], cases[1::2]]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("NUMPY_RESNEXT_MAX_BYTES", None)
    procs = []
    for i, batch in enumerate(batches):
        work = root / f"work{i}"
        work.mkdir()
        (work / "cases.json").write_text(json.dumps(batch))
        procs.append((work, subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "_attack_worker.py"), str(work / "cases.json"),
             str(work / "results.json"), str(work)], env=env, preexec_fn=_limit_memory,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    results, peaks = {}, []
    for work, proc in procs:
        out, err = proc.communicate(timeout=3600)
        assert proc.returncode == 0, f"attack worker died: {err.decode()[-3000:]}"
        data = json.loads((work / "results.json").read_text())
        peaks.append(data["peak_rss"])
        results.update({r["id"]: r for r in data["results"]})
    outcome = {c["id"]: (c, results[c["id"]]) for c in cases}
    if os.environ.get("NUMPY_RESNEXT_ATTACK_TABLE"):
        Path(os.environ["NUMPY_RESNEXT_ATTACK_TABLE"]).write_text(_table(outcome))
    yield outcome, peaks
    _attacks.remove_deep_dirs(root)


def _table(outcome):
    """Per class: cases, sizes (the case names), failing cases, worst peak memory, slowest."""
    lines = ["| class | cases | sizes | failing | peak memory | slowest case |",
             "|---|---:|---|---:|---:|---:|"]
    for cls in CLASSES:
        mine = [(c, r) for c, r in outcome.values() if c["cls"] == cls]
        if not mine:
            continue
        sizes = ", ".join(sorted({c["id"][len(cls) + 1:] for c, _ in mine}))
        failing = sum(bool(_problems(c, r)) for c, r in mine)
        peak = max(r.get("peak", 0) for _, r in mine)
        slow = max(r.get("seconds", 0) for _, r in mine)
        lines.append(f"| {cls} | {len(mine)} | {sizes[:120]}{'...' if len(sizes) > 120 else ''} "
                     f"| {failing} | {peak / 2 ** 20:.0f} MiB | {slow:.1f} s |")
    return "\n".join(lines) + "\n"


def _output_problems(case, r, where):
    """What may never reach the terminal, whatever the outcome."""
    out = []
    if r.get("controls"):
        out.append(f"{where}: raw control characters {r['controls']} on stdout/stderr: "
                   f"{(r['stderr'] + r.get('stdout', ''))[:300]!r}")
    if r.get("forged"):
        out.append(f"{where}: a forged line reached the terminal: {r['forged']}")
    if r.get("stderr_chars", 0) > MAX_MESSAGE + 2000:
        out.append(f"{where}: {r['stderr_chars']} characters on stderr")
    if re.search(r"\.py:\d+: \w*Warning", r.get("stderr", "")):
        out.append(f"{where}: a raw Python warning on stderr: {r['stderr'][:300]!r}")
    return out


def _problems(case, result):
    """Everything wrong with one case's outcome (empty when it is clean)."""
    out = list(result.get("after", ()))
    name = case.get("named") or os.path.basename(case["path"].rstrip("/"))[:40]
    for r in result["api"]:
        where = f"{case['id']} via {r['api']}"
        if r["kind"] == "no-error" and (case.get("may_load") or case.get("completes")):
            continue
        if r["kind"] != "clean":
            out.append(f"{where}: {r['kind']} {r.get('type', '')} {r.get('msg', '')[-800:]}")
        elif not re.search(case["match"], r["msg"]):
            out.append(f"{where}: message {r['msg'][:300]!r} lacks /{case['match']}/")
        elif name not in r["msg"] and case["api"] not in ARRAY_APIS:
            out.append(f"{where}: message {r['msg'][:300]!r} does not name {name}")
        elif CONTROL.search(r["msg"]) or len(r["msg"]) > MAX_MESSAGE:
            out.append(f"{where}: message of {len(r['msg'])} characters with raw control "
                       f"characters or too long: {r['msg'][:300]!r}")
    for r in result["cli"]:
        where = f"{case['id']} via numpy-resnext {r['argv'][0]}"
        lines = r["stderr"].splitlines()
        out.extend(_output_problems(case, r, where))
        if r.get("leftovers"):
            out.append(f"{where}: left behind {r['leftovers'][:3]}")
        if case.get("may_load") and r["kind"] == "exit" and r["rc"] == 0:
            continue
        if case.get("completes") and r["kind"] == "exit" and r["rc"] in (0, 1) \
                and "Traceback" not in r["stderr"]:
            continue
        if r["kind"] != "exit" or r["rc"] != 2:
            out.append(f"{where}: {r['kind']} rc={r.get('rc')} {r.get('msg', '')[-800:]} "
                       f"{r['stderr'][-400:]}")
        elif "Traceback" in r["stderr"] or "internal error" in r["stderr"]:
            out.append(f"{where}: {r['stderr'][-800:]}")
        elif case.get("progress") and lines and lines[-1].startswith(
                f"numpy-resnext {r['argv'][0]}: error: "):
            lines = lines[-1:]             # progress lines before the one error line
            if name not in lines[0]:
                out.append(f"{where}: stderr {r['stderr'][:300]!r} does not name {name}")
        elif not lines or not lines[0].startswith(f"numpy-resnext {r['argv'][0]}: error: "):
            out.append(f"{where}: stderr {r['stderr'][:300]!r}")
        elif len(lines) != 1:
            out.append(f"{where}: {len(lines)} lines on stderr: {r['stderr'][:300]!r}")
        elif len(lines[0]) > MAX_MESSAGE + 100:
            out.append(f"{where}: an error line of {len(lines[0])} characters")
        elif name not in r["stderr"]:
            out.append(f"{where}: stderr {r['stderr'][:300]!r} does not name {name}")
    marker = case.get("marker")
    if marker and os.path.exists(marker):
        out.append(f"{case['id']}: CODE WAS EXECUTED (marker {marker} exists)")
    return out


@pytest.mark.parametrize("cls", CLASSES)
def test_attack_class_gets_clean_errors(outcome, cls):
    if ONLY and cls not in ONLY:
        pytest.skip("not among NUMPY_RESNEXT_ATTACK_CLASSES")
    cases, _ = outcome
    mine = [v for v in cases.values() if v[0]["cls"] == cls]
    assert len(mine) >= 3, f"{cls}: only {len(mine)} cases"
    problems = [p for case, result in mine for p in _problems(case, result)]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])


def test_every_generated_class_is_checked(outcome):
    if ONLY:
        pytest.skip("NUMPY_RESNEXT_ATTACK_CLASSES chose some classes")
    cases, _ = outcome
    assert {c["cls"] for c, _ in cases.values()} == set(CLASSES)
    assert len(cases) >= 700


def test_peak_memory_stays_under_the_ceiling(outcome):
    _, peaks = outcome
    assert max(peaks) < LIMIT, [f"{p / 2 ** 30:.2f} GiB" for p in peaks]
