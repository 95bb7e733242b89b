"""Per-layer summary table (name, op, output shape, groups, params, MACs) and totals."""

from __future__ import annotations

from .plan import Plan, as_plan
from .shapes import output_shapes


def summarize(plan: Plan, input_size=(224, 224)) -> dict:
    """The summary as plain data: architecture fields, per-layer rows and totals (``plan``
    may also be an architecture's name or config)."""
    plan = as_plan(plan)
    H, W = input_size
    rows = output_shapes(plan, H, W)
    return {
        "arch": plan.config.name,
        "config": plan.config.to_dict(),
        "input_size": [H, W],
        "params": int(sum(r["params"] for r in rows)),
        "macs": int(sum(r["macs"] for r in rows)),
        "layers": [dict(r, shape=list(r["shape"])) for r in rows],
    }


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_summary(summary: dict) -> str:
    """The summary as a fixed-width text table."""
    lines = [f"{summary['arch']} at {summary['input_size'][0]}x{summary['input_size'][1]}"]
    header = f"{'name':<28} {'op':<22} {'output':<18} {'groups':>6} {'params':>12} {'MACs':>14}"
    lines += [header, "-" * len(header)]
    for r in summary["layers"]:
        shape = "x".join(str(s) for s in r["shape"])
        lines.append(f"{r['name']:<28} {r['op']:<22} {shape:<18} {r['groups']:>6} "
                     f"{r['params']:>12,} {r['macs']:>14,}")
    lines.append("-" * len(header))
    lines.append(f"total: {summary['params']:,} trainable parameters ({_human(summary['params'])}), "
                 f"{summary['macs']:,} MACs ({_human(summary['macs'])}) per image; "
                 f"BN running statistics not counted")
    return "\n".join(lines)
