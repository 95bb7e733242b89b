"""docs/START_HERE.md is the one "start here": every link and anchor on it (and on the pages
this change added) resolves, every command it shows parses, every file it names exists, and
README.md, docs/README.md and the walkthrough point to it instead of to starts of their own."""

import re
import shlex
from pathlib import Path

import pytest

from numpy_resnext.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
START = DOCS / "START_HERE.md"
PAGES = [START, DOCS / "README.md", DOCS / "story.md", DOCS / "paper_results.md", DOCS / "digits.md",
         DOCS / "bottleneck.md", DOCS / "walkthrough.md", ROOT / "exercises" / "README.md"]


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    return {slug(h) for h in re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_anchors_resolve(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.name}: link to {target} goes nowhere"
        if anchor:
            assert anchor in anchors(path), f"{page.name}: {path.name} has no heading #{anchor}"


def test_the_other_entry_points_send_readers_here():
    for page in (ROOT / "README.md", DOCS / "README.md", DOCS / "walkthrough.md"):
        assert "START_HERE.md" in page.read_text(encoding="utf-8"), page
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        if page == START:
            continue
        for line in page.read_text(encoding="utf-8").splitlines():
            if re.search(r"start (here|with)", line, re.I):
                assert "START_HERE.md" in line, f"{page.name} names a start of its own: {line.strip()}"


def test_every_command_on_the_page_parses():
    parser = build_parser()
    commands = [c for c in re.findall(r"`(numpy-resnext [^`]+)`", START.read_text(encoding="utf-8"))]
    assert len(commands) >= 6
    names = next(a for a in parser._actions if a.dest == "command").choices
    for command in commands:
        argv = shlex.split(command)[1:]
        if len(argv) == 1:                                       # a command named, not run
            assert argv[0] in names, command
        else:
            parser.parse_args(argv)                              # exits (fails the test) on a bad flag


def test_every_file_the_page_names_exists():
    text = START.read_text(encoding="utf-8")
    named = re.findall(r"`((?:numpy_resnext|exercises|docs)/[\w/.]+)`", text)
    named += ["numpy_resnext/" + f for f in re.findall(r"`((?:walk|grad|plan)\.py|ops/conv\.py)`", text)]
    assert "numpy_resnext/paper/minimal.py" in named
    for f in named:
        assert (ROOT / f).exists(), f
    assert "python exercises/check.py" in text and (ROOT / "exercises" / "check.py").is_file()


def test_the_learners_path_is_in_order_and_its_sizes_are_right():
    """Step by step as a newcomer meets them: the story, the walkthrough, minimal.py, the
    derivations, the exercises, the fast code, training, explain."""
    text = START.read_text(encoding="utf-8")
    path = text[text.index("## If you want to learn"):]
    steps = re.findall(r"^(\d+)\. \*\*([^*]+)\*\*", path, re.M)
    assert [int(n) for n, _ in steps] == list(range(1, len(steps) + 1)) and len(steps) == 8
    order = ["story.md", "walkthrough.md", "minimal.py", "backward.md", "exercises/", "plan.py",
             "digits.md", "explain"]
    positions = [path.index(word) for word in order]
    assert positions == sorted(positions)
    m = re.search(r"about (\d+) lines", path)
    lines = len((ROOT / "numpy_resnext" / "paper" / "minimal.py").read_text(encoding="utf-8").splitlines())
    assert m and abs(lines - int(m[1])) <= 10
