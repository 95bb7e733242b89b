"""What a weight file says about its network besides its tensors, and which networks the
loader refuses to guess.

Tensors alone cannot tell some networks apart. timm's anti-aliased ResNets (``resnetaa50``,
``resnetblur50``, ``resnetaa50d``, ``seresnextaa101d_32x8d``) put an average or blur pool
where a stride was; the pool holds no weights, so their files hold exactly the tensors of
``resnet50``, ``resnet50d`` or ``seresnext101d_32x8d``. A dilated network (timm's
``output_stride`` 16 or 8, torchvision's ``replace_stride_with_dilation``) holds its
undilated twin's. Run as the twin, such a file gives wrong logits and nothing warns. So
the loader reads every other piece of evidence a file carries (:func:`evidence`):

- ``config.json`` (timm's ``save_for_hf`` / ``push_to_hub``, a Hugging Face folder, or the
  one beside a ``model.safetensors`` / ``pytorch_model.bin``): ``architecture`` and
  ``model_args``;
- the file's name, when it starts with the name of a family numpy-resnext does not
  implement (timm's releases ``resnetaa50_a1h-4cf422b3.pth``, PaddleClas's
  ``SE_ResNeXt50_32x4d_pretrained.pdparams``, a Hugging Face cache folder
  ``models--timm--resnetaa50d.sw_in12k_ft_in1k``);
- (squeeze-and-excitation tensors are no longer such evidence: the SE-ResNeXt family is
  implemented and inferred from them, docs/se_resnext.md; loaded into a named network
  without SE, they are reported as assumed: :func:`se_unused`).

A declared name that numpy-resnext computes (:data:`~numpy_resnext.archs.ALIASES`, the
registry, or a ResNet of :data:`SAME_MATH`) is checked against the tensors; so is a file
named after one (``SE_ResNeXt50_vd_32x4d_pretrained.pdparams``). Anything else is a
:class:`Finding`; the loader refuses the file in one line naming what is not implemented,
unless the user names an architecture, and then it loads and reports what was assumed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from ..archs import ALIASES, ARCHS, custom
from ..bounded import clip_list, short_repr
from .hub import read_config

__all__ = ["Finding", "evidence", "declared_config", "se_unused", "UNSUPPORTED", "SAME_MATH", "MODEL_ARGS"]

SE = ("SE-ResNet or SENet-154 blocks (numpy-resnext implements squeeze-and-excitation in the "
      "SE-ResNeXt family only)")
AA = ("anti-aliased downsampling (an average or blur pool where the stride was; it holds no "
      "weights, so the file's tensors are those of the network without it)")
DILATION = ("dilated convolutions (output stride below 32; the weights are those of the "
            "undilated network)")

# families numpy-resnext does not implement: (pattern on the start of a lower-cased
# architecture or file name, what is missing); a name may match several
UNSUPPORTED = (
    (r"(legacy_|gluon_)?(se_?resnet|senet154)", SE),
    (r"(se)?resne(x)?t(aa|blur)\d", AA),
    (r"(sk|eca|gc|bat_|halo|lambda_|bot)resne", "attention or selective-kernel blocks"),
    (r"csp", "cross-stage-partial (CSP) stages"),
    (r"(se|gc|eca|bat_)?resne(x)?t\d+ts\b", "timm's ByobNet 'ts' networks (SiLU, tiered stem)"),
    (r"resnetv2", "pre-activation (v2) blocks"),
    (r"resnetrs", "ResNet-RS blocks"),
    (r"resnet(18|34)d?\b", "basic blocks (two 3x3 convolutions, no bottleneck)"),
    (r"resnet\d+[cst]\b", "timm's c, s and t stems (deep stems without the vd shortcut, or "
                          "wider or tiered)"),
    (r"resnet\d+_gn\b", "GroupNorm"),
    (r"resnet\d+x?\d*_clip", "CLIP's attention-pool ResNets"),
)
# squeeze-and-excitation tensors, in every naming scheme that has them
SE_TENSORS = (r"(^|\.)se(_module)?\.", r"\.scale\.(squeeze|excitation)\.", r"_(sqz|exc)_(weights|offset)$")
# ResNets numpy-resnext computes without a registry entry (timm's and torchvision's names)
SAME_MATH = {
    "resnet26": custom(depths=(2, 2, 2, 2), cardinality=1, base_width=64, num_classes=1000, name="resnet26"),
    "resnet101": custom(depths=(3, 4, 23, 3), cardinality=1, base_width=64, num_classes=1000, name="resnet101"),
    "resnet152": custom(depths=(3, 8, 36, 3), cardinality=1, base_width=64, num_classes=1000, name="resnet152"),
    "wide_resnet50_2": custom(depths=(3, 4, 6, 3), cardinality=1, base_width=128, num_classes=1000,
                              name="wide_resnet50_2"),
    "wide_resnet101_2": custom(depths=(3, 4, 23, 3), cardinality=1, base_width=128, num_classes=1000,
                               name="wide_resnet101_2"),
}
SAME_MATH.update({f"resnet{n}d": custom(depths=d, cardinality=1, base_width=64, stem="deep",
                                         num_classes=1000, name=f"resnet{n}d")
                  for n, d in ((26, (2, 2, 2, 2)), (50, (3, 4, 6, 3)), (101, (3, 4, 23, 3)),
                               (152, (3, 8, 36, 3)), (200, (3, 24, 36, 3)))})
# timm's model_args (and torchvision's constructor arguments): those that cannot change the
# inference of a network whose tensors match, with the values that are safe (None: any)
MODEL_ARGS = {
    "num_classes": None, "in_chans": None, "pretrained_cfg": None, "pretrained_cfg_overlay": None,
    "drop_rate": None, "drop_path_rate": None, "drop_block_rate": None, "zero_init_last": None,
    "zero_init_residual": None, "layers": None, "cardinality": None, "base_width": None,
    "groups": None, "width_per_group": None, "stem_width": None, "stem_type": ("", "deep"),
    "avg_down": None, "down_kernel_size": (1,), "global_pool": ("avg", ""), "output_stride": (32,),
    "replace_stride_with_dilation": ([False, False, False], None), "act_layer": ("relu", None),
    "norm_layer": ("batchnorm", "batchnorm2d", None), "aa_layer": (None,), "attn_layer": (None,),
}
WHY_ARG = {"output_stride": DILATION, "replace_stride_with_dilation": DILATION, "aa_layer": AA,
           "attn_layer": "attention layers (attn_layer)", "global_pool": "a head other than the average pool",
           "act_layer": "activations other than ReLU", "norm_layer": "normalisation other than BatchNorm",
           "down_kernel_size": "3x3 shortcut convolutions", "stem_type": "timm's tiered stem"}
MAX_FINDINGS = 8       # of one kind (names, model_args): a config.json may hold millions of keys
CONFIG_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


class Finding(NamedTuple):
    """One piece of evidence that the file holds a network numpy-resnext does not implement."""

    where: str           # the evidence: "config.json names architecture 'resnetaa50'", ...
    missing: str         # what numpy-resnext does not implement

    def sentence(self) -> str:
        return f"{self.where}: {self.missing}"


def unsupported(name: str) -> list:
    """What numpy-resnext lacks for the architecture ``name`` (empty when it knows no lack,
    and for a name of its own followed by a tag or a file's suffix)."""
    low = str(name).strip().lower()
    if _ours(low):
        return []
    return [why for pattern, why in UNSUPPORTED if re.match(pattern, low)]


def _ours(low: str) -> bool:
    """``low`` is one of numpy-resnext's names, alone or followed by ".tag", "-hash",
    "_pretrained..." or Paddle's "_infer..." (``seresnext50_32x4d.gluon_in1k``,
    ``SE_ResNeXt50_32x4d_pretrained.pdparams``, ``SENet154_vd_infer.pdiparams``)."""
    names = {n.lower() for n in ARCHS} | set(ALIASES) | set(SAME_MATH)
    return any(low == n or (low.startswith(n) and (low[len(n)] in ".-"
                                                   or low[len(n):].startswith(("_pretrained", "_infer"))))
               for n in names)


def expected_config(name):
    """The ArchConfig a declared architecture name computes, or None when it is not one
    numpy-resnext computes (timm's pretrained tag after a dot is ignored)."""
    low = str(name).strip().lower()
    base = low.partition(".")[0]
    lower = {n.lower(): n for n in ARCHS}
    for key in (low, base):
        if key in ALIASES:
            return ARCHS[ALIASES[key]]
        if key in lower:
            return ARCHS[lower[key]]
        if key in SAME_MATH:
            return SAME_MATH[key]
    return None


def declared_config(read, path=None):
    """The parsed config.json of a Hugging Face-style source (None when there is none)."""
    config = dict(read.extras).get("config.json")
    if config is not None or path is None:
        return config
    path = Path(os.fspath(path))
    if path.is_file() and (path.name in CONFIG_FILES or path.name.endswith(".index.json")):
        return read_config(path.parent)
    return None


def _names_of(path):
    """Architecture-like names in a path: its file (or folder) name, a Hugging Face-style
    weights file's folder, and the model of a cache folder ``models--ORG--NAME``."""
    if path is None:
        return []
    p = Path(os.fspath(path))
    names = [p.name]
    if p.name in CONFIG_FILES or p.name.endswith(".index.json"):
        names.append(p.parent.name)
    names += [part.rsplit("--", 1)[-1] for part in p.parts if part.startswith("models--")]
    return names


def _model_args(config) -> list:
    args = dict(config.get("model_args") or {}) if isinstance(config.get("model_args"), dict) else {}
    if "global_pool" in config:
        args.setdefault("global_pool", config["global_pool"])
    found = []
    for key, value in args.items():
        if len(found) == MAX_FINDINGS:
            found.append(Finding(f"config.json sets {len(args):,} model_args",
                                 "model_args beyond the first few (not checked one by one)"))
            break
        if key not in MODEL_ARGS:
            found.append(Finding(f"config.json sets model_args {short_repr(key, 40)}={short_repr(value, 40)}",
                                 "a setting that cannot be checked against the tensors"))
            continue
        allowed = MODEL_ARGS[key]
        shown = str(value).lower() if isinstance(value, str) else value
        if allowed is not None and shown not in allowed:
            found.append(Finding(f"config.json sets model_args {key}={short_repr(value, 40)}",
                                 WHY_ARG.get(key, "a setting numpy-resnext does not implement")))
    return found


def evidence(read, path=None):
    """(declared, findings) for a :class:`~.weightfile.WeightFile` read from ``path``.

    declared: (name, ArchConfig) when config.json names a network numpy-resnext computes
              (to be checked against the tensors), else None.
    findings: [:class:`Finding`]: everything that says the file holds a network
              numpy-resnext does not implement.
    """
    findings, declared = [], None
    config = declared_config(read, path)
    if isinstance(config, dict):
        arch = config.get("architecture") or config.get("architectures")
        names = arch if isinstance(arch, list) else [arch] if arch is not None else []
        if len(names) > MAX_FINDINGS:
            findings.append(Finding(f"config.json names {len(names):,} architectures",
                                    "a file of several networks (one is expected)"))
            names = []
        for name in names:
            shown = short_repr(name, 60)
            lacks = unsupported(name) if isinstance(name, str) else []
            target = expected_config(name) if isinstance(name, str) else None
            if lacks:
                findings += [Finding(f"config.json names architecture {shown}", why) for why in lacks]
            elif target is None:
                findings.append(Finding(f"config.json names architecture {shown}",
                                        f"the architecture {shown} (not among `numpy-resnext archs`)"))
            elif declared is None:
                declared = (name, target)
        findings += _model_args(config)
    for name in _names_of(path):
        findings += [Finding(f"the file is named {short_repr(name, 80)}", why) for why in unsupported(name)]
    return declared, findings


def se_unused(tensors, name) -> list:
    """The assumption to report when squeeze-and-excitation tensors are loaded into ``name``,
    a network without SE (named by the user): one line, or none without such tensors."""
    hits = [n for n in tensors if any(re.search(p, n) for p in SE_TENSORS)]
    if not hits:
        return []
    return [f"{len(hits)} of its tensors belong to squeeze-and-excitation layers "
            f"({clip_list([short_repr(n, 60) for n in hits[:2]], 2)}, ...), which {name} has none of; "
            f"loaded as {name} because it was named"]


def refusal(findings, found_name=None) -> str:
    """The one-line error for a file whose evidence says numpy-resnext lacks something
    (``found_name``: what its tensors would load as, None when they load as nothing)."""
    missing = "; ".join(dict.fromkeys(f.missing for f in findings))
    where = "; ".join(dict.fromkeys(f.where for f in findings))
    twin = (f"Its tensors would load as {found_name}, which computes something else. "
            if found_name else "")
    return (f"not loaded: this file's network has {missing}, which numpy-resnext does not "
            f"implement ({where}). {twin}Name an architecture to load the tensors into it anyway; "
            "the load report then says what was assumed")
