"""``numpy-resnext archs``: the table of built-in architectures."""

import json

from ..archs import ALIAS_TABLE, ARCHS
from ..shapes import totals
from ._common import add_command


def add_parser(sub):
    p = add_command(sub, "archs", "list the built-in architectures and the names torchvision, "
                    "timm and paddle.vision give them (the table shows current names; --json "
                    "also timm's names before 0.9)", "numpy-resnext archs --json")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return p


def run(args):
    rows = []
    for name, cfg in ARCHS.items():
        params, macs = totals(cfg)
        aliases = {a: who for a, t, who in ALIAS_TABLE if t == name}        # name -> whose
        rows.append(dict(name=name, depths=list(cfg.depths), cardinality=cfg.cardinality,
                         base_width=cfg.base_width, stem=cfg.stem, avg_down=cfg.avg_down,
                         stem_pool=cfg.stem_pool, se_reduction=cfg.se_reduction,
                         params=params, macs=macs, aliases=list(aliases), alias_of=aliases,
                         description=cfg.description))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'architecture':<26} {'depths':<14} {'C':>3} {'d':>3} {'stem':<6} {'SE':>3} {'params':>13} "
          f"{'GMACs@224':>9}  aliases")
    for r in rows:
        stem = r["stem"] + ("*" if r["stem_pool"] == "ceil" else "")
        print(f"{r['name']:<26} {'-'.join(map(str, r['depths'])):<14} {r['cardinality']:>3} "
              f"{r['base_width']:>3} {stem:<6} {r['se_reduction'] or '-':>3} {r['params']:>13,} "
              f"{r['macs'] / 1e9:>9.2f}  {', '.join(a for a, who in r['alias_of'].items() if '<' not in who)}")
    print("SE: the squeeze-and-excitation reduction r (an SE layer is the block's channels / r wide, "
          "rounded as its library rounds); stem*: the legacy SENet stem max-pool "
          "(no padding, ceil mode)")
    return 0
