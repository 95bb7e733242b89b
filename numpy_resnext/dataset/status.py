"""What a run store holds: shards done and missing, images, failures, retried shards."""

from __future__ import annotations

import numpy as np

from .store import RunStore, shard_bounds


def ranges(values) -> str:
    """'0-3, 7, 9-12' of sorted integers."""
    out, values = [], list(values)
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ", ".join(out)


def status(path, max_failures=1000) -> dict:
    """The JSON-ready status of the store at ``path``."""
    store = RunStore(path)
    m = store.manifest
    done = store.done()
    attempts = np.asarray(store.root["attempts"][:])
    n = store.n_images
    in_done = np.zeros(n, bool)
    for s in np.flatnonzero(done):
        start, stop = shard_bounds(n, store.shard_size, int(s))
        in_done[start:stop] = True
    errors, ids = store.errors(), store.ids()
    failures = [{"id": ids[i], "message": errors[i]} for i in range(n) if in_done[i] and errors[i]]
    runs = m.get("runs", [])
    return {"store": store.path, "arch": m["arch"]["name"], "dtype": m["dtype"],
            "fingerprint": m["fingerprint"], "shards": store.n_shards, "shard_size": store.shard_size,
            "done": int(done.sum()), "missing": [int(s) for s in np.flatnonzero(~done)],
            "images": n, "images_done": int(in_done.sum()), "failed": len(failures),
            "failures": failures[:max_failures], "labelled": int((store.labels() >= 0).sum()),
            "retried": [{"shard": int(s), "attempts": int(attempts[s])} for s in np.flatnonzero(attempts > 1)],
            "kept": store.kept("stats"), "sample": m["sample"], "inputs_saved": m["save_inputs"],
            "preprocessing": m["preprocessing"], "source": m["source"], "runs": len(runs),
            "last_run": runs[-1] if runs else None, "complete": bool(done.all())}


def format_status(s: dict) -> str:
    lines = [f"{s['store']}: {s['arch']} {s['dtype']}, fingerprint {s['fingerprint'][:16]}",
             f"shards: {s['done']} of {s['shards']} done ({s['shard_size']} image(s) per shard)"
             + (f"; missing: {ranges(s['missing'])}" if s["missing"] else ""),
             f"images: {s['images_done']} of {s['images']} computed, {s['failed']} failed, "
             f"{s['labelled']} labelled",
             f"kept: {', '.join(s['kept']) or 'logits only'}; sample {s['sample']}; "
             f"inputs {'saved' if s['inputs_saved'] else 'not saved'}"]
    if s["retried"]:
        lines.append("retried shards (a worker died or a task raised): "
                     + ", ".join(f"{r['shard']} ({r['attempts']} attempts)" for r in s["retried"]))
    last = s["last_run"]
    if last:
        lines.append(f"runs: {s['runs']}; the last: {last.get('status')}, started {last.get('started')}, "
                     f"{len(last.get('computed', []))} shard(s) computed on {last.get('executor')} "
                     f"({last.get('workers')} worker(s), {last.get('threads')} BLAS thread(s) each)")
    for f in s["failures"][:20]:
        lines.append(f"  failed {f['id']}: {f['message']}")
    if s["failed"] > 20:
        lines.append(f"  ... and {s['failed'] - 20} more (--json lists them)")
    return "\n".join(lines)


__all__ = ["format_status", "ranges", "status"]
