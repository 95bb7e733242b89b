"""One stage numbering and one meaning per symbol, in the prose a learner reads.

Stage N is layerN (1-based, as the tensor names count); the paper's conv2..conv5 are
matched to it once, in docs/README.md, from plan.PAPER_STAGE_NAMES. C is the cardinality;
d the paper's bottleneck width (layer1's), d' the channels per branch of a stage. Each test
below fails on a wording this package once had (0-based "stage s = 0..3", "stage 0", the
paper's names used for the engine's stages without the mapping, d printed for d', a
cardinality C beside a channel C)."""

import re
from pathlib import Path

import pytest

import numpy_resnext as nrx
from numpy_resnext import archs
from numpy_resnext.cli import COMMANDS
from numpy_resnext.ops import im2col
from numpy_resnext.paper import claims as audit
from numpy_resnext.paper import explain
from numpy_resnext.plan import PAPER_STAGE_NAMES, layer_plan
from numpy_resnext.shapes import output_shapes

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# The learner-facing prose: README, docs/, and the docstrings / messages of these modules.
# (numpy_resnext/io/ describes Paddle's file layouts, whose own names count res2..res5.)
PROSE_MODULES = ["archs.py", "paper/claims.py", "paper/explain.py", "ops/conv.py", "ops/im2col.py",
                 "paper/branches.py", "shapes.py", "summary.py", "ops/naive.py", "paper/digits.py",
                 "paper/figures.py", "plan.py", "walk.py", "grad.py", "train.py"]


def prose_files():
    files = [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))
    return files + [ROOT / "numpy_resnext" / m for m in PROSE_MODULES]


def test_the_prose_modules_exist():
    missing = [m for m in PROSE_MODULES if not (ROOT / "numpy_resnext" / m).is_file()]
    assert not missing, f"moved or renamed: {missing}"


ZERO_BASED = [
    (r"\bs\s*=\s*0\s*\.\.\s*3", "s = 0..3"),
    (r"\bstage\s+0\b", "stage 0"),
    (r"\bstage\s+s\b", "stage s"),
    (r"\bstages?\s+[0-3]\s*\.\.\s*[0-3]\b", "a 0-based stage range (stages 1..3 meaning layer2..layer4)"),
    (r"\bfirst stage\b", "'first stage' (say layer1)"),
]


@pytest.mark.parametrize("path", prose_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_stages_are_counted_as_the_names_count_them(path):
    text = path.read_text(encoding="utf-8")
    found = [(what, text[max(m.start() - 40, 0):m.end() + 40].replace("\n", " "))
             for pattern, what in ZERO_BASED for m in re.finditer(pattern, text, re.IGNORECASE)]
    assert not found, f"{path.name}: {found}"


def test_the_paper_mapping_is_stated_once_and_matches_the_plan():
    """docs/README.md's table is the only place 'layerN | convM' is written; each row is
    recomputed from the plan (PAPER_STAGE_NAMES, output sizes, d' of ResNeXt-50 32x4d)."""
    text = (DOCS / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| layer(\d) \| (conv\d) \| (\d+)x(\d+) \| (\d+) \|$", text, re.M)
    assert len(rows) == 4, rows
    config = nrx.get_arch("ResNeXt50_32x4d")
    shapes = {r["name"]: r["shape"] for r in output_shapes(config, 224, 224)}
    blocks = {b.layer: b for b in layer_plan(config).blocks}
    for n, paper, h, w, dp in rows:
        n = int(n)
        assert PAPER_STAGE_NAMES[n] == paper
        assert shapes[blocks[n].name][1:] == (int(h), int(w))
        assert blocks[n].group_width == int(dp)
    others = [p.name for p in prose_files() if p != DOCS / "README.md"
              and re.search(r"\|\s*layer\d\s*\|\s*conv\d\s*\|", p.read_text(encoding="utf-8"))]
    assert not others, f"a second copy of the stage table in {others}"


def test_paper_stage_names_are_always_given_with_ours():
    """Where the explain and audit output name a paper stage (convN), the layerN it is sits
    beside it."""
    text = explain.format_layout(explain.block_layout(nrx.get_arch("ResNeXt50_32x4d"), "layer3.2"))
    assert "layer3 = the paper's conv4" in text
    claims = [c.claim for c in audit.table1_checks()]
    stage_claims = [c for c in claims if "conv2" in c]
    assert stage_claims and all("layer1..layer4 (the paper's conv2..conv5)" in c for c in stage_claims)


def test_archs_docstrings_say_which_index_is_which_stage():
    assert "index i of layer{i+1}" in archs.ArchConfig.stage_width.__doc__
    assert "layer1" in archs.ArchConfig.__doc__ and "first stage" not in archs.ArchConfig.__doc__
    assert archs.custom(depths=(1, 1), cardinality=4, base_width=4).stage_width(1) == 32  # layer2: d' = 8


def test_d_prime_is_not_printed_as_d():
    """A block beyond layer1 has d' = d * 2**(N-1) channels per branch; audit's Fig. 3
    claim and explain's layout must call that d', not d."""
    check = audit.fig3_check("ResNeXt50_32x4d", "layer2.0")
    assert "branches of d'=8" in check.claim and "d=8" not in check.claim
    text = explain.format_layout(explain.block_layout(nrx.get_arch("ResNeXt50_32x4d"), "layer2.0"))
    assert "bottleneck width d = 4" in text and "d' = 8" in text and "d = 8" not in text


def test_cardinality_and_channels_are_told_apart():
    """The convolution pages use C for channels: wherever they mention the cardinality they
    say it is the group count G, and explain's grouped-conv formulas use Cg, never C/G right
    after 'cardinality C'."""
    for text in (im2col.__doc__, (DOCS / "grouped_convolution.md").read_text(encoding="utf-8")):
        for line in text.splitlines():
            if "cardinality" in line:
                assert "G" in line or "groups" in line, line
        assert re.search(r"C (is )?always (counts )?channels|C always counts channels|C is always channels",
                         text), "the page must say what its C means"
    text = explain.format_layout(explain.block_layout(nrx.get_arch("ResNeXt50_32x4d"), "layer1.0"))
    assert "C/G" not in text and "R*S*C)" not in text and "(G, P, R*S*Cg)" in text


# --- names the docs point to exist ----------------------------------------------------------
MODULES = ({p.stem for p in (ROOT / "numpy_resnext").glob("*.py")}
           | {p.parent.name for p in (ROOT / "numpy_resnext").glob("*/__init__.py")})


def _resolve(dotted):
    import importlib
    parts = dotted.split(".")
    if parts[0] == "numpy_resnext":
        parts = parts[1:]
    if not parts or parts[0] not in MODULES:
        return True                                       # not a reference to this package
    obj = importlib.import_module(f"numpy_resnext.{parts[0]}")
    for part in parts[1:]:
        if not hasattr(obj, part) and hasattr(obj, "__path__"):        # a subpackage's module
            try:
                importlib.import_module(f"{obj.__name__}.{part}")
            except ImportError:
                return False
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


@pytest.mark.parametrize("path", [ROOT / "README.md"] + sorted(DOCS.glob("*.md")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_code_names_in_the_docs_exist(path):
    """`module.name` references (`grad.stem_backward`, `blocks.stem`, ...) and links to
    numpy_resnext/*.py files resolve in the package as it is."""
    text = path.read_text(encoding="utf-8")
    refs = set(re.findall(r"`((?:numpy_resnext\.)?[a-z_]+(?:\.[A-Za-z_][A-Za-z_0-9]*)+)`", text))
    refs |= set(re.findall(r"`((?:numpy_resnext\.)?[a-z_]+\.[A-Za-z_][A-Za-z_0-9]*)\(", text))
    file_exts = (".py", ".md", ".npz", ".npy", ".json", ".png", ".jpg", ".safetensors", ".bin", ".pth",
                 ".pt", ".pdparams", ".pdiparams", ".pdmodel", ".tar", ".txt", ".info", ".record", ".pdopt")
    tensor_names = (".weight", ".bias", "._mean", "._variance", ".running_mean", ".running_var")
    stale = sorted(r for r in refs if not r.endswith(file_exts + tensor_names) and not _resolve(r))
    files = re.findall(r"(?:\.\./)?(numpy_resnext/[\w/]+\.py)", text)
    missing = sorted({f for f in files if not (ROOT / f).exists()})
    assert not stale and not missing, f"{path.name}: unknown names {stale}, missing files {missing}"


def _layout_table():
    """{place: its row} from README's "How the code is organised" table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## How the code is organised", 1)[1].split("\n## ", 1)[0]
    table = section.split("| place | its job |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        place, job = line.strip("|").split("|", 1)
        for name in re.findall(r"`([\w.]+/?)`", place):
            rows[name] = job
    return rows


def test_readme_layout_table_lists_every_module_and_sub_package():
    """Every top-level module and every sub-package has a row, every module of a sub-package
    is named in its row, and the table names nothing that does not exist."""
    rows = _layout_table()
    pkg = ROOT / "numpy_resnext"
    top = {p.name for p in pkg.glob("*.py") if p.name != "__init__.py"}
    subs = {p.name + "/" for p in pkg.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    listed = set(rows)
    assert top <= listed, f"top-level modules without a row: {sorted(top - listed)}"
    assert subs <= listed, f"sub-packages without a row: {sorted(subs - listed)}"
    assert listed <= top | subs, f"rows for what does not exist: {sorted(listed - top - subs)}"
    for sub in sorted(s for s in subs if (pkg / s / "__init__.py").exists()):
        modules = {p.name for p in (pkg / sub).rglob("*.py") if p.name != "__init__.py"}   # nested too
        packages = {p.parent.name + "/" for p in (pkg / sub).glob("*/__init__.py")}
        unnamed = sorted(m for m in modules | packages if f"`{m}`" not in rows[sub])
        if sub == "commands/":            # one module per command, named after it
            commands = {c.replace("-", "_") + ".py" for c in COMMANDS} | {"_common.py"}
            assert modules == commands, f"command modules {sorted(modules ^ commands)} differ from cli.COMMANDS"
        else:
            assert not unnamed, f"README's row for {sub} does not name {unnamed}"
