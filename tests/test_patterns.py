"""Name patterns without backtracking: ``--keep`` globs (``_select.glob_match``) keep
``fnmatch.fnmatchcase``'s meaning, name-map keys keep the meaning (and the captures) of
the regular expression ``([^.]+)`` per ``*``; a long name against a pattern that makes
either regular expression retry every split finishes at once."""

import fnmatch
import random
import re

from numpy_resnext._select import Selection, glob_match
from numpy_resnext.bounded import StarPattern
from numpy_resnext.golden.names import parse_map


def _regex_groups(key, name):
    """The oracle: the regular expression names.py used before (Python's re)."""
    rx = re.compile("".join("([^.]+)" if part == "*" else re.escape(part)
                            for part in re.split(r"(\*)", key)))
    m = rx.fullmatch(name)
    return m.groups() if m else None


def test_glob_match_agrees_with_fnmatch():
    rng = random.Random(0)
    for _ in range(4000):
        pattern = "".join(rng.choice(["a", "b", ".", "*", "?", "[ab]", "[!a]", "["])
                          for _ in range(rng.randint(0, 6)))
        name = "".join(rng.choice("ab.[") for _ in range(rng.randint(0, 8)))
        assert glob_match(name, pattern) == fnmatch.fnmatchcase(name, pattern), (pattern, name)


def test_map_keys_capture_what_the_regular_expression_captures():
    rng = random.Random(1)
    for _ in range(4000):
        key = "".join(rng.choice("ab.*") for _ in range(rng.randint(0, 7)))
        name = "".join(rng.choice("ab.") for _ in range(rng.randint(0, 9)))
        assert StarPattern(key).match(name) == _regex_groups(key, name), (key, name)
    nm = parse_map({"layer*.*.conv*": "s*.b*.c*"})
    assert nm.translate("layer12.3.conv2") == "s12.b3.c2"


def test_pathological_patterns_on_a_long_name_finish():
    # fnmatch / re take seconds already at 300 characters with 4 stars and would not end
    # in a lifetime here (20,000 characters, 21 stars); the linear matchers take a second
    name = "a" * 20_000 + "b"
    assert not Selection("*a" * 20 + "*c*b").matches(name)
    assert StarPattern("*a" * 20 + "*c*b").match(name) is None
    assert parse_map({"*a" * 20 + "*c*b": "x"}).translate(name) == name
    assert parse_map({"*a" * 20 + "*b": "x"}).translate(name) == "x"
