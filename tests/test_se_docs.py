"""docs/se_resnext.md's SE costs, recomputed from the definitions it states.

The page gives the cost of one SE block (2·C·r + r + C parameters, 2·C·r multiply-accumulates,
C·H·W multiplications for the scale) and measured totals per model; each total must follow
from the formula, the stage depths and r = C/16. The sentence or table row is read from the
page, so an edit that breaks it fails here.
"""

import re
from pathlib import Path

DOC = (Path(__file__).resolve().parent.parent / "docs" / "se_resnext.md").read_text(encoding="utf-8")
DEPTHS = {26: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
OUT = (256, 512, 1024, 2048)                    # block output channels C of layer1..layer4
SIDE = (56, 28, 14, 7)                          # their feature maps at 224x224


def se_cost(depth):
    """(parameters, MACs, scale multiplications) of every SE block of a depth-layer model."""
    params = macs = scale = 0
    for blocks, c, side in zip(DEPTHS[depth], OUT, SIDE):
        r = c // 16
        params += blocks * (2 * c * r + r + c)
        macs += blocks * 2 * c * r
        scale += blocks * c * side * side
    return params, macs, scale


def _int(s):
    return int(s.replace(",", ""))


def test_se_parameters_per_model():
    m = re.search(r"SE parameters per model are\s+([\d,]+) \(26 layers\), ([\d,]+) \(50\), "
                  r"([\d,]+) \(101\) and\s+([\d,]+) \(152\)", DOC)
    assert m, "docs/se_resnext.md no longer states the SE parameters per model"
    assert [_int(g) for g in m.groups()] == [se_cost(d)[0] for d in (26, 50, 101, 152)]


def test_se_macs_column():
    rows = re.findall(r"^\| (\S+) \| (\d+,\d+,\d+,\d+) \| [^|]+\|[^|]+\|[^|]+\| [\d,]+ \*? ?\| [\d,]+ \| "
                      r"[\d,]+ \*? ?\| ([\d,]+) \|$", DOC, flags=re.M)
    assert len(rows) == 15, rows
    for name, depths, se_macs in rows:
        depth = {"2,2,2,2": 26, "3,4,6,3": 50, "3,4,23,3": 101, "3,8,36,3": 152}[depths.replace(" ", "")]
        assert _int(se_macs) == se_cost(depth)[1], name


def test_per_stage_table_and_scale_count():
    m = re.search(r"\| total \| \| \| ([\d,]+) \| [\d.]+% of ([\d,]+) \| \| \| ([\d,]+) \|", DOC)
    assert m, "docs/se_resnext.md no longer has the per-stage total row"
    params, macs, scale = se_cost(50)
    assert (_int(m.group(1)), _int(m.group(3))) == (params, macs)
    s = re.search(r"rewrites it \(([\d,]+) values per image in seresnext50_32x4d", DOC)
    assert s and _int(s.group(1)) == scale
