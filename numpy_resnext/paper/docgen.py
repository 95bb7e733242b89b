"""The generated parts of docs/story.md and docs/paper_results.md.

Each generated section sits between ``<!-- generated:NAME -->`` and ``<!-- end:NAME -->``
in its page; :func:`render` produces it from the code (the paper's numbers in
:mod:`.results`, the block forms and name tables of :mod:`.story`, and parameter and
multiply-accumulate counts of the layer plan), so a test can compare page and code, and

    python -m numpy_resnext.paper.docgen docs          # rewrite the sections in place
    python -m numpy_resnext.paper.docgen docs --check  # exit 1 if a page is stale
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .._files import atomic_write
from ..archs import custom
from ..plan import layer_plan
from ..shapes import totals
from . import results as R
from .story import block_forms, depth_collapse, format_forms, format_names, paddleclas_rows
from .sweep import budget_table, digits_config

MARK = re.compile(r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end:(?P=name) -->)", re.S)


def _size(depths, cardinality, width, stem="plain", classes=1000, size=224):
    """(parameters in millions, G multiply-accumulates) of a network, from its layer plan."""
    config = custom(depths=depths, cardinality=cardinality, base_width=width, stem=stem,
                    num_classes=classes, stem_width=64, name="paper_setting")
    params, macs = totals(layer_plan(config), size, size)
    return params / 1e6, macs / 1e9


def _n(v, fmt="{:.1f}"):
    return "–" if v is None else fmt.format(v)


def _imagenet(rows, top5=False) -> str:
    """Table 3 or 4: each setting's errors beside its size counted from its layer plan."""
    extra = (" complexity |", "---|", " top-5 error (%) |", "---:|") if top5 else ("", "", "", "")
    lines = [f"| network | C x d |{extra[0]} top-1 error (%) |{extra[2]} checked | here: parameters (M) | here: GMACs |",
             f"|---|---|{extra[1]}---:|{extra[3]}---|---:|---:|"]
    for s in rows:
        p, g = _size(s.depths, s.cardinality, s.width)
        cells = [s.network, f"{s.cardinality}x{s.width}d"] + ([s.note] if top5 else []) + [f"{s.top1:.1f}"]
        cells += ([_n(s.top5)] if top5 else []) + [s.checked, f"{p:.2f}", f"{g:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table3() -> str:
    return _imagenet(R.TABLE3)


def table4() -> str:
    return _imagenet(R.TABLE4, top5=True)


def table5() -> str:
    lines = ["| network | 224x224 top-1 / top-5 error (%) | larger crop | its top-1 / top-5 error (%) | checked |",
             "|---|---|---|---|---|"]
    for c in R.TABLE5:
        small = f"{_n(c.top1_224)} / {_n(c.top5_224)}" if c.top1_224 is not None else "–"
        large = f"{_n(c.top1_large)} / {_n(c.top5_large)}" if c.top1_large is not None else "–"
        crop = f"{c.crop}x{c.crop}" if c.crop else "–"
        lines.append(f"| {c.network} | {small} | {crop} | {large} | {c.checked} |")
    return "\n".join(lines)


def table7() -> str:
    lines = ["| network | parameters (M), paper | here (10 classes) | CIFAR-10 error (%) | CIFAR-100 error (%) | checked |",
             "|---|---:|---:|---:|---:|---|"]
    for c in R.TABLE7:
        here = "–"
        if c.cardinality is not None:
            p, _ = _size(R.CIFAR_DEPTHS, c.cardinality, c.width, stem="cifar", classes=10, size=32)
            here = f"{p:.3f}"
        lines.append(f"| {c.network} | {c.params_m:.1f} | {here} | {c.cifar10:.2f} | {c.cifar100:.2f} | {c.checked} |")
    return "\n".join(lines)


def table8() -> str:
    lines = ["| backbone (Faster R-CNN) | AP at IoU 0.5 | AP | checked |", "|---|---:|---:|---|"]
    lines += [f"| {d.backbone} | {d.ap50:.1f} | {d.ap:.1f} | {d.checked} |" for d in R.TABLE8]
    return "\n".join(lines)


def wsl() -> str:
    lines = ["| architecture | parameters: card / here | GFLOPs (card, multiply-adds) / GMACs here | "
             "top-1 / top-5 accuracy (%), card | PaddleClas's weights |",
             "|---|---|---|---|---|"]
    for w in R.WSL:
        p, g = totals(layer_plan(w.arch), 224, 224)
        pc = "–" if w.paddleclas is None else f"{w.paddleclas[0]:.1f} / {w.paddleclas[1]:.1f}"
        lines.append(f"| {w.arch} | {w.card_params_m}M / {p / 1e6:.2f}M | {w.card_gflops} / {g / 1e9:.2f} | "
                     f"{w.top1:.1f} / {w.top5:.1f} | {pc} |")
    return "\n".join(lines)


def _same(diff) -> str:
    """A difference as a verdict that reads the same on every machine (no last bits)."""
    return "below 1e-12: equal" if diff < 1e-12 else f"about {diff:.0f}: different"


def collapse() -> str:
    c = depth_collapse()
    return "\n".join([
        "| what is compared (C = 4 branches of width d = 3, 1x1 layers, float64) | largest difference |",
        "|---|---:|",
        f"| depth 2: sum of C branches vs one dense pair of width C·d | {_same(c.depth2_difference)} |",
        f"| depth 3: sum of C branches vs grouped (block-diagonal) middle layer | {_same(c.depth3_difference)} |",
        f"| depth 3: sum of C branches vs the middle layer made dense | {_same(c.dense_middle_difference)} |",
        "",
        f"The grouped middle layer has {c.grouped_middle_params} weights, a dense one of the same width "
        f"{c.dense_middle_params}: C times more."])


def checked_summary() -> str:
    """Which of the paper's numbers here were confirmed, and how."""
    rows = [("Table 3", R.TABLE3), ("Table 4", R.TABLE4), ("Table 5", R.TABLE5), ("Table 7", R.TABLE7),
            ("Table 8", R.TABLE8)]
    lines = ["| table | rows | confirmed by a second source or recomputed | paper only |", "|---|---:|---:|---:|"]
    for item, table in rows:
        only = sum(r.checked == "paper only" for r in table)
        lines.append(f"| {R.cite(item)} | {len(table)} | {len(table) - only} | {only} |")
    return "\n".join(lines)


def budget() -> str:
    """The equal-budget widths of the cardinality experiment, from the layer plans."""
    lines = ["| C | d | width of layer1's grouped conv (C·d) | parameters | from the budget | MACs per 8x8 image |",
             "|---:|---:|---:|---:|---:|---:|"]
    for c in budget_table():
        macs = totals(layer_plan(digits_config(c.cardinality, c.width)), 8, 8)[1]
        lines.append(f"| {c.cardinality} | {c.width} | {c.cardinality * c.width} | {c.params:,} | "
                     f"{c.deviation:+.2%} | {macs:,} |")
    return "\n".join(lines)


SWEEP_DATA = "figures/cardinality_digits.json"      # train-demo --sweep --json, beside the figure


def sweep_results(folder) -> str:
    """The cardinality experiment's measured results, from the JSON committed with its figure."""
    data = json.loads((Path(folder) / SWEEP_DATA).read_text(encoding="utf-8"))
    lines = ["| C x d | parameters | held-out error (%), each seed | mean | last epoch's training loss, mean [min, max] |",
             "|---|---:|---|---:|---|"]
    for row in data["summary"]:
        losses = [r["history"]["train_loss"][-1] for r in data["runs"] if r["cardinality"] == row["cardinality"]]
        lines.append(f"| {row['cardinality']}x{row['width']}d | {row['params']:,} | "
                     f"{', '.join(f'{e:.2f}' for e in row['errors'])} | {row['mean']:.2f} | "
                     f"{sum(losses) / len(losses):.4f} [{min(losses):.4f}, {max(losses):.4f}] |")
    return "\n".join(lines)


SECTIONS = {        # page -> section -> a function of the docs folder
    "story.md": {
        "block-forms": lambda folder: format_forms(block_forms()),
        "depth-collapse": lambda folder: collapse(),
        "paddleclas-names": lambda folder: format_names(paddleclas_rows()),
        "paddleclas-names-101": lambda folder: format_names(paddleclas_rows(
            "ResNeXt101_32x4d", blocks=("layer3.22",), bn_of=None)),
        "wsl": lambda folder: wsl(),
    },
    "digits.md": {"budget": lambda folder: budget(), "sweep": sweep_results},
    "paper_results.md": {name: (lambda folder, make=make: make()) for name, make in (
        ("table3", table3), ("table4", table4), ("table5", table5), ("table7", table7), ("table8", table8),
        ("wsl", wsl), ("depth-collapse", collapse), ("checked", checked_summary))},
}


def render(page: str, folder="docs") -> dict:
    """Section name -> its markdown, for a page of :data:`SECTIONS` in the docs ``folder``."""
    return {name: make(folder) for name, make in SECTIONS[page].items()}


def sections_in(text: str) -> dict:
    """Section name -> the text a page holds between its markers."""
    return {m["name"]: m["body"].rstrip("\n") for m in MARK.finditer(text)}


def update(text: str, page: str, folder="docs") -> str:
    """``text`` with every generated section of ``page`` rewritten."""
    made = render(page, folder)
    return MARK.sub(lambda m: f"{m[1]}{made[m['name']]}\n{m[4]}" if m["name"] in made else m[0], text)


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    folder = Path(next((a for a in args if a != "--check"), "docs"))
    stale = []
    for page in SECTIONS:
        path = folder / page
        text = path.read_text(encoding="utf-8")
        new = update(text, page, folder)
        missing = set(SECTIONS[page]) - set(sections_in(text))
        if missing:
            print(f"{path}: no markers for {', '.join(sorted(missing))}", file=sys.stderr)
            stale.append(page)
        if new != text:
            stale.append(page)
            if not check:
                atomic_write(path, lambda tmp, text=new: Path(tmp).write_text(text, encoding="utf-8"))
                print(f"wrote {path}")
    if check and stale:
        print(f"stale: {', '.join(sorted(set(stale)))} (run python -m numpy_resnext.paper.docgen {folder})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
