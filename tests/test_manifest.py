"""reference/fixtures/MANIFEST.json against the fixture tree: one checked whole.

Every file under reference/fixtures/ (but the manifest) has an entry whose sha256 and byte
count match the file; every entry points at a file that exists and names the reference
script that made it (which exists), the framework version(s) and the seed(s). The last
tests tamper with a copy of the tree to show that each of these checks can fail.
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from numpy_resnext.golden import file_sha256

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("paddle", "torch")
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?")


def seeds_of(entry):
    return {k: v for k, v in entry.items() if k == "seed" or k.endswith("_seed")}


def entry_problems(key, entry, root):
    """What is missing from one entry's provenance (not its bytes)."""
    problems = []
    script = entry.get("script", "")
    if not (script.startswith("reference/") and (root / script).is_file()):
        problems.append(f"{key}: script {script!r} is not a file under reference/")
    versions = {f: entry.get(f) for f in FRAMEWORKS if f in entry}
    if not versions or not all(isinstance(v, str) and VERSION.match(v) for v in versions.values()):
        problems.append(f"{key}: no framework version ({' or '.join(FRAMEWORKS)}), found {versions}")
    seeds = seeds_of(entry)
    drew_nothing = entry.get("random") is False and all(v is None for v in seeds.values())
    if not seeds or not (drew_nothing or all(isinstance(v, int) for v in seeds.values())):
        problems.append(f"{key}: no integer seed (seed / *_seed), found {seeds}")
    return problems


def manifest_problems(fixtures, root=ROOT):
    """Every disagreement between ``fixtures``/MANIFEST.json and the files beside it."""
    manifest = json.loads((fixtures / "MANIFEST.json").read_text())
    on_disk = {p.relative_to(fixtures).as_posix() for p in fixtures.rglob("*") if p.is_file()}
    on_disk.discard("MANIFEST.json")
    problems = [f"{k}: file has no manifest entry" for k in sorted(on_disk - set(manifest))]
    problems += [f"{k}: entry points at no file" for k in sorted(set(manifest) - on_disk)]
    for key in sorted(set(manifest) & on_disk):
        entry, path = manifest[key], fixtures / key
        if entry.get("bytes") != path.stat().st_size:
            problems.append(f"{key}: {path.stat().st_size} bytes, manifest says {entry.get('bytes')}")
        if entry.get("sha256") != file_sha256(path):
            problems.append(f"{key}: sha256 {file_sha256(path)[:12]}..., manifest says "
                            f"{str(entry.get('sha256'))[:12]}...")
    for key, entry in sorted(manifest.items()):
        problems += entry_problems(key, entry, root)
    return problems


def test_every_fixture_file_matches_its_manifest_entry(fixtures_dir):
    problems = manifest_problems(fixtures_dir)
    assert not problems, f"{len(problems)} problems:\n  " + "\n  ".join(problems[:20])


def test_manifest_covers_every_reference_script_prefix(fixtures_dir):
    manifest = json.loads((fixtures_dir / "MANIFEST.json").read_text())
    by_prefix = {}
    for key, entry in manifest.items():
        by_prefix.setdefault(key.split("/")[0], set()).add(entry["script"])
    assert by_prefix == {"formats": {"reference/make_format_fixtures.py"},
                         "grads": {"reference/paddle_grads.py"},
                         "paddle": {"reference/paddle_models.py"},
                         "se": {"reference/se_facts.py"},
                         "torch": {"reference/torch_capture.py"},
                         "torch_io": {"reference/torch_io_fixtures.py"}}
    assert list(manifest) == sorted(manifest), "MANIFEST.json keys are not sorted"


# --- the checks above can fail: tampered copies ------------------------------------------
@pytest.fixture
def copy(fixtures_dir, tmp_path):
    """A scratch copy of the fixture tree (a few MB)."""
    d = tmp_path / "fixtures"
    shutil.copytree(fixtures_dir, d)
    assert manifest_problems(d) == []
    return d


def test_one_flipped_byte_is_caught(copy):
    path = copy / "paddle" / "tiny_wsl_golden.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = manifest_problems(copy)
    assert len(problems) == 1 and problems[0].startswith("paddle/tiny_wsl_golden.npz: sha256"), problems


def test_unlisted_missing_and_truncated_files_are_caught(copy):
    (copy / "torch" / "stray.npz").write_bytes(b"not in the manifest")
    (copy / "formats" / "single.record").unlink()
    path = copy / "grads" / "tiny.npz"
    path.write_bytes(path.read_bytes()[:-1])
    problems = "\n".join(manifest_problems(copy))
    assert "torch/stray.npz: file has no manifest entry" in problems
    assert "formats/single.record: entry points at no file" in problems
    assert "grads/tiny.npz: 1183739 bytes, manifest says 1183740" in problems


def test_entries_without_script_version_or_seed_are_caught(copy):
    manifest_path = copy / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["torch/tiny_timm_d.npz"]["script"] = "reference/gone.py"
    del manifest["grads/tiny.npz"]["paddle"]
    del manifest["formats/tiny.pdopt"]["seed"]
    manifest["paddle/names.json.gz"]["random"] = True          # then seed None is no seed
    manifest_path.write_text(json.dumps(manifest))
    problems = "\n".join(manifest_problems(copy))
    assert "torch/tiny_timm_d.npz: script 'reference/gone.py'" in problems
    assert "grads/tiny.npz: no framework version" in problems
    assert "formats/tiny.pdopt: no integer seed" in problems
    assert "paddle/names.json.gz: no integer seed" in problems
