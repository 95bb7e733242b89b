"""Scratch directories for module- and session-scoped fixtures, removed when the fixture ends.

pytest removes a passing test's ``tmp_path`` when the test ends (``tmp_path_retention_policy =
"failed"`` in pyproject.toml), but a directory from ``tmp_path_factory.mktemp`` lives until the
session ends. The oracle lanes' module fixtures hold weight files of full-size networks (1-2 GB
for the 152-layer and WSL models), so left to the session they add up to tens of GB. A fixture
that writes files does::

    with scratch(tmp_path_factory, "name") as out:
        ...
        yield value
"""

import shutil
from contextlib import contextmanager


@contextmanager
def scratch(tmp_path_factory, name):
    path = tmp_path_factory.mktemp(name)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
