"""The measured facts of docs/se_resnext.md, from the frameworks' own SE-ResNeXt models.

For every model of tests/_se_oracle.py (PaddleClas 2.6.0 on Paddle 3.3.1, one process per
model; timm 1.0.31 on torch 2.13.0): trainable parameters, BN running-statistic values,
multiply-accumulates at 1x3x224x224 (every Conv2d / Linear, the SE layers included: output
values x fan-in), the SE layers' share, the channel-wise scale's multiplies, the SE widths
per stage, the per-stage cost of SE in seresnext50_32x4d against resnext50_32x4d, and the
state_dict entries of each stage's first block.

    python reference/se_facts.py                 # everything
    python reference/se_facts.py --names seresnext26t_32x4d SENet154_vd
    python reference/se_facts.py --fixture       # reference/fixtures/se/names.json.gz

The fixture holds, for every model (and SE_ResNeXt152_64x4d as PaddleClas 2.6.0 declares it,
under "SE_ResNeXt152_64x4d (declared)"), the framework, its state_dict's [key, ParamAttr
name (Paddle; timm: the key), shape] rows, trainable parameters, BN statistic values and MACs
at 1x3x224x224 (SE layers included), so that the tests check names, inference and counts
against the frameworks' own models without them.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import _se_counts as sc  # noqa: E402
import _se_oracle as so  # noqa: E402
sys.path.insert(0, str(ROOT / "reference"))
from _manifest import FIXTURES, atomic_write, file_entry, update_manifest  # noqa: E402

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "head")
CONV3 = {".se.fc2": ".conv3", ".se_module.fc2": ".conv3", ".scale.excitation": ".conv2._conv"}


def summary(c) -> dict:
    rows = c["rows"]
    by_name = {r["name"]: r for r in rows}
    se = [r for r in rows if sc.is_se(r["name"])]
    scale = 0
    for r in se:
        for tail, conv3 in CONV3.items():
            if r["name"].endswith(tail):
                scale += _prod(by_name[r["name"][:-len(tail)] + conv3]["out"])
    widths = OrderedDict()
    for r in se:
        if r["name"].endswith((".fc1", ".squeeze")):
            w = r["out"][0] if len(r["out"]) == 3 else r["out"][-1]
            widths.setdefault(sc.stage_of(r["name"]), set()).add(w)
    return dict(trainable=c["trainable"], statistics=c["statistics"], macs=sum(r["macs"] for r in rows),
                se_params=sum(r["params"] for r in se), se_macs=sum(r["macs"] for r in se),
                scale=scale, widths={k: sorted(v) for k, v in widths.items()}, blocks=len(se) // 2)


def _prod(shape):
    out = 1
    for s in shape:
        out *= s
    return out


def per_stage(c):
    """{stage: [params, MACs, SE params, SE MACs]}."""
    out = OrderedDict((s, [0, 0, 0, 0]) for s in STAGES)
    for r in c["rows"]:
        t = out[sc.stage_of(r["name"])]
        t[0] += r["params"]
        t[1] += r["macs"]
        if sc.is_se(r["name"]):
            t[2] += r["params"]
            t[3] += r["macs"]
    return out


def first_blocks(c):
    """Lines for the stem, each stage's first block and the head: a BatchNorm's four entries
    on one line ("PREFIX.{weight,bias,...}"), every other entry on its own."""
    keep = OrderedDict()
    for key, pname, shape in c["names"]:
        m = re.match(r"^(layer\d+\.(\d+)|bb_\d+_(\d+))\.", key)
        if m and int(m.group(2) or m.group(3)) != 0:
            continue
        prefix, field = key.rsplit(".", 1)
        keep.setdefault(prefix, []).append((field, pname, shape))
    lines = []
    for prefix, entries in keep.items():
        fields = [f for f, _, _ in entries]
        if len(entries) == 4 and fields[2] in ("running_mean", "_mean"):
            pnames = [p for _, p, _ in entries]
            tail = "" if pnames[0] == f"{prefix}.weight" else f"  [{_common(pnames)}]"
            lines.append(f"  {prefix + '.{' + ','.join(fields) + '}':58} {str(tuple(entries[0][2])):20}{tail}")
        else:
            for field, pname, shape in entries:
                key = f"{prefix}.{field}"
                lines.append(f"  {key:58} {str(tuple(shape)):20}" + (f"  [{pname}]" if pname != key else ""))
    return lines


def _common(names):
    """'conv1_bn_{scale,offset,mean,variance}' for four ParamAttr names sharing a prefix."""
    stem = names[0].rsplit("_", 1)[0]
    if all(n.startswith(stem + "_") for n in names):
        return stem + "_{" + ",".join(n[len(stem) + 1:] for n in names) + "}"
    return ", ".join(names)


def fixture(out=FIXTURES / "se" / "names.json.gz"):
    """The name lists and counts of every model (see the module docstring), gzip'd JSON, and
    its entry in reference/fixtures/MANIFEST.json."""
    data = OrderedDict()
    for m in so.MODELS:
        c = sc.counts(m)
        data[m] = dict(framework=c["framework"], notes=c["notes"], names=c["names"],
                       trainable=c["trainable"], statistics=c["statistics"],
                       macs=sum(r["macs"] for r in c["rows"]))
    d = sc.paddle_declared_counts("SE_ResNeXt152_64x4d")
    data["SE_ResNeXt152_64x4d (declared)"] = dict(framework=d["framework"], notes=[f"forward: {d['ran']}"],
                                                   names=d["names"], trainable=d["trainable"],
                                                   statistics=d["statistics"], macs=None)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):                                    # the gzip header names the file, not the tmp
        with open(tmp, "wb") as f, gzip.GzipFile(out.name, "wb", fileobj=f, mtime=0) as gz, \
                io.TextIOWrapper(gz) as text:
            json.dump(data, text, separators=(",", ":"))
    atomic_write(out, write, mode=0o644)
    record(out, data)
    return out


def record(out, data):
    """The fixture's entry in reference/fixtures/MANIFEST.json: the versions its frameworks
    report ("paddle 3.3.1, PaddleClas 2.6.0 (...)", "timm 1.0.31, torch 2.13.0+cpu")."""
    said = " ".join(v["framework"] for v in data.values())
    versions = {k: re.search(rf"{name} (\d[^, ]*)", said).group(1)
                for k, name in (("paddle", "paddle"), ("paddleclas", "PaddleClas"), ("torch", "torch"),
                                ("timm", "timm"))}
    update_manifest("se/", {"se/names.json.gz": file_entry(
        out, script="reference/se_facts.py", command="python reference/se_facts.py --fixture",
        seed=None, random=False, **versions,
        what="state_dict keys, ParamAttr names, shapes, trainable parameters, BN statistics and "
             "MACs at 1x3x224x224 of every SE-ResNeXt model, as the frameworks build them")}, replace=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", default=list(so.MODELS) + list(so.REFERENCE_MODELS))
    p.add_argument("--names", nargs="*", default=["SE_ResNeXt50_32x4d", "SE_ResNeXt50_vd_32x4d",
                                                  "SENet154_vd", "seresnext50_32x4d", "seresnext26t_32x4d",
                                                  "legacy_seresnext50_32x4d"])
    p.add_argument("--fixture", action="store_true", help="write reference/fixtures/se/names.json.gz")
    a = p.parse_args(argv)
    if a.fixture:
        print(f"wrote {fixture()}")
        return
    got = OrderedDict((m, sc.counts(m)) for m in a.models)
    print(f"{'model':28} {'trainable':>12} {'BN stats':>9} {'MACs':>15} {'SE params':>11} "
          f"{'SE MACs':>10} {'scale mults':>12}  SE widths per stage")
    for m, c in got.items():
        s = summary(c)
        widths = " ".join(f"{k}:{'/'.join(map(str, v))}" for k, v in s["widths"].items())
        print(f"{m:28} {s['trainable']:>12,} {s['statistics']:>9,} {s['macs']:>15,} {s['se_params']:>11,} "
              f"{s['se_macs']:>10,} {s['scale']:>12,}  {widths}")
        for note in c["notes"]:
            print(f"  note: {note}")
    if "SE_ResNeXt152_64x4d" in a.models:
        d = sc.paddle_declared_counts("SE_ResNeXt152_64x4d")
        print(f"SE_ResNeXt152_64x4d as declared: trainable {d['trainable']:,}, BN stats "
              f"{d['statistics']:,}; forward: {d['ran']}")
    if "seresnext50_32x4d" in got and "resnext50_32x4d" in got:
        se, plain = per_stage(got["seresnext50_32x4d"]), per_stage(got["resnext50_32x4d"])
        print("\nseresnext50_32x4d vs resnext50_32x4d per stage (params, MACs at 224x224):")
        for st in STAGES:
            (p1, m1, sp, sm), (p0, m0, _, _) = se[st], plain[st]
            print(f"  {st:7} params {p0:>11,} -> {p1:>11,} (SE {sp:>9,}, +{100 * (p1 - p0) / max(p0, 1):.1f}%)  "
                  f"MACs {m0:>13,} -> {m1:>13,} (SE {sm:>9,}, +{100 * (m1 - m0) / max(m0, 1):.2f}%)")
    for m in a.names:
        if m not in got:
            continue
        print(f"\n{m}: {len(got[m]['names'])} state_dict entries; stem, first block of each stage, head:")
        print("\n".join(first_blocks(got[m])))


if __name__ == "__main__":
    main()
