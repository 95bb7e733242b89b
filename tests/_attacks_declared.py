"""Attack classes of what a file says besides its tensors and of squeeze-and-excitation: a
Hugging Face-style folder's config.json (deep, huge, millions of keys or architectures, not
UTF-8, sparse, a FIFO, names that would forge a line), read beside the weights by
``io.declared``; files named after SE networks, or holding SE tensors, with hostile names,
counts, shapes and values; SE models asked for computations the budget cannot hold; name
maps of many dialects and ``{last}`` against a reference of many names; step counters that
are no counters; the architecture a reference's manifest records; the numbers of
``--preprocess``. Same conventions as tests/_attacks.py (templates: {path}, {w}, {x},
{dout}, {dump}, {work}; ``named``: what a message must name when it is not the file).
"""

from __future__ import annotations

import json
import os

import numpy as np

from _attacks import _case
from _attacks_io import _st
from _attacks_terminal import FORGE, HOSTILE, _safetensors_with_metadata, _tiny

# every command that reads weights from a folder, the architecture named or inferred
HUB_CLI = [["convert", "--weights", "{path}", "--output", "{work}/o.npz"],
           ["forward", "--weights", "{path}", "--input", "{x}", "--output", "{work}/o.npy"],
           ["classify", "--weights", "{path}", "IMAGE"],
           ["golden", "--weights", "{path}", "--dtype", "float32", "--input", "{x}", "--output",
            "{work}/g.npz"]]
CONFIG_MATCH = r"JSON|config\.json|not loaded|architecture|UTF-8|bytes|reading limit"
N_KEYS = 700_000          # about 9 MB of keys: inputs under 10 MB are bounded to 1.2 GiB


def _image(root):
    """A preprocessed (3, H, W) float image for classify."""
    p = root / "declared_image.npy"
    if not p.exists():
        np.save(p, np.zeros((3, 40, 40), np.float32))
    return str(p)


def _hub_cli(root):
    image = _image(root)
    return [[image if a == "IMAGE" else a for a in argv] for argv in HUB_CLI]


def _timm_safetensors(path, cfg, params):
    from numpy_resnext.io import safetensors
    from numpy_resnext.io.schemes import file_state
    from numpy_resnext.plan import layer_plan
    safetensors.write(path, file_state(params, layer_plan(cfg), "timm"), {})


def _se_tiny():
    from numpy_resnext.archs import ArchConfig
    from numpy_resnext.params import init_params
    cfg = ArchConfig(name="tiny_se", depths=(1, 1), cardinality=2, base_width=4, num_classes=3,
                     se_reduction=4)
    return cfg, dict(init_params(cfg))


# --- config.json beside the weights ------------------------------------------------------------
CONFIGS = {
    "deep-list": "[" * 100_000 + "]" * 100_000,
    "deep-object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "huge-name": '{"architecture": "resnext50_32x4d.\\u001b]0;pwned\\u0007\\r\\nFORGED wrote '
                 'logits.npy' + "a" * 9_000_000 + '"}',
    "many-model-args": '{"architecture": "resnext50_32x4d", "model_args": {'
                       + ",".join(f'"k{i}":0' for i in range(N_KEYS)) + "}}",
    "many-architectures": '{"architectures": ['
                          + ",".join(f'"resnetaa{i}"' for i in range(N_KEYS)) + "]}",
    "many-top-keys": "{" + ",".join(f'"k{i}":[]' for i in range(N_KEYS)) + "}",
    "forged-name": json.dumps({"architecture": "resnetaa50" + FORGE}),
    "control-model-arg": json.dumps({"architecture": "resnet50d",
                                     "model_args": {f"k{bad}": bad for bad in HOSTILE}}),
    "long-integer": '{"num_classes": ' + "9" * 5000 + "}",
}


def hub_config_json(root):
    cases = []
    cfg, params = _tiny()
    cli = _hub_cli(root)
    for label, text in CONFIGS.items():
        d = root / f"hub_cfg_{label}"
        d.mkdir()
        _safetensors_with_metadata(d / "model.safetensors", cfg, params, {})
        (d / "config.json").write_text(text)
        _case(cases, "hub-config-json", label, d, "weights", CONFIG_MATCH, cli=cli,
              may_load=label == "many-top-keys")     # no architecture named: nothing to refuse
        if label in ("huge-name", "many-model-args", "deep-object"):   # the file, config beside
            _case(cases, "hub-config-json", f"{label}-file", d / "model.safetensors", "weights",
                  CONFIG_MATCH, cli=cli, named=d.name)
    d = root / "hub_cfg_not-utf8"
    d.mkdir()
    _safetensors_with_metadata(d / "model.safetensors", cfg, params, {})
    (d / "config.json").write_bytes(b'{"architecture": "\xff\xfe\x1b]0;x\x07"}')
    _case(cases, "hub-config-json", "not-utf8", d, "weights", CONFIG_MATCH, cli=cli)
    d = root / "hub_cfg_sparse"
    d.mkdir()
    _safetensors_with_metadata(d / "model.safetensors", cfg, params, {})
    with open(d / "config.json", "wb") as f:                 # 1 GiB of zeros, no blocks
        f.truncate(1 << 30)
    _case(cases, "hub-config-json", "sparse-1GiB", d, "weights", CONFIG_MATCH, cli=cli)
    d = root / "hub_cfg_fifo"                                 # not a regular file: not read
    d.mkdir()
    _safetensors_with_metadata(d / "model.safetensors", cfg, params, {})
    os.mkfifo(d / "config.json")
    _case(cases, "hub-config-json", "fifo", d, "weights", CONFIG_MATCH, cli=cli, may_load=True,
          untouched=[str(d / "config.json")])
    return cases


# --- files of SE networks ------------------------------------------------------------------
def se_files(root):
    cases = []
    cfg, params = _se_tiny()
    one = np.zeros(1, np.float32)
    # named after a network numpy-resnext does not implement, tiny tensors of one it does
    for name in ("seresnet50_a1h-4cf422b3.pth.safetensors", "seresnextaa101d_32x8d.safetensors",
                 "SE_ResNet50_vd_pretrained.safetensors", f"seresnet50{FORGE}.safetensors"):
        p = root / name.replace("\r", "").replace("\n", "")
        _timm_safetensors(p, cfg, params)
        _case(cases, "se-files", f"named-{name[:12]}", p, "weights", r"not loaded|architecture",
              named=p.name[:40], cli=_hub_cli(root))
    for n in (1000, 50_000):                        # many SE blocks, named like one network
        p = root / f"SE_ResNeXt50_32x4d_many_{n}.npz"
        np.savez(p, **{f"layer1.{i}.se.fc{j}.weight": one for i in range(n) for j in (1, 2)})
        _case(cases, "se-files", f"many-blocks-{n}", p, "weights",
              r"unrecognised|naming scheme|no bottleneck|blocks|shape|missing|members")
    for i, bad in enumerate(HOSTILE[:3]):         # SE names that would reach the terminal
        p = root / f"SE_ResNeXt50_32x4d_ctl_{i}.npz"
        np.savez(p, **{k.replace(".se.", f".se{bad}.") if ".se.fc1" in k else k: v
                       for k, v in params.items()})
        _case(cases, "se-files", f"control-names-{i}", p, "weights",
              r"unrecognised|naming scheme|missing|unexpected|not an \.npy array")
    for label, shape in (("1e12", [10 ** 12, 1, 1, 1]), ("2e40", [2 ** 40, 2 ** 40, 1, 1])):
        header = json.dumps({"layer1.0.se.fc1.weight": {"dtype": "F32", "shape": shape,
                                                         "data_offsets": [0, 4]}}).encode()
        p = root / f"SE_ResNeXt50_32x4d_shape_{label}.safetensors"
        _st(p, header, bytes(4))
        _case(cases, "se-files", f"declared-shape-{label}", p, "weights", r"needs \d+ bytes|would need")
    nan = {k: (np.full_like(v, np.nan) if ".se." in k else v) for k, v in params.items()}
    p = root / "SE_ResNeXt_tiny_nan.npz"            # non-finite SE weights: refused by build
    np.savez(p, **nan)
    _case(cases, "se-files", "nan-weights", p, "build", r"NaN|non-finite|finite",
          cli=[["forward", "--weights", "{path}", "--input", "{x}", "--output", "{work}/o.npy"]])
    return cases


def se_compute_size(root):
    """A tiny SE model asked for computations the budget cannot hold."""
    cases = []
    cfg, params = _se_tiny()
    w = root / "tiny_se.npz"
    np.savez(w, **params)
    for label, shape in (("1x873813", (1, 3, 1, 873813)), ("1x2048", (1, 3, 2048, 2048))):
        p = root / f"se_big_input_{label}.npy"
        np.save(p, np.zeros(shape, np.float32))
        dout = root / f"se_big_dout_{label}.npy"
        np.save(dout, np.ones((1, 3), np.float32))
        cli = [["golden", "--weights", str(w), "--input", "{path}", "--output", "{work}/g.npz"],
               ["grad", "--weights", str(w), "--input", "{path}", "--dout", str(dout),
                "--output", "{work}/g.npz"],
               ["forward", "--weights", str(w), "--dtype", "float64", "--input", "{path}",
                "--output", "{work}/o.npy"],
               ["golden", "SE_ResNeXt50_vd_32x4d", "--init", "identity-bn", "--input", "{path}",
                "--output", "{work}/g.npz"]]
        _case(cases, "se-compute-size", label, p, "none", r"memory", cli=cli, completes=True,
              progress=True)
    for size in ("20000", "100000"):
        _case(cases, "se-compute-size", f"audit-{size}", root / f"se_size_{size}", "none",
              r"memory", named="memory", completes=True, progress=True,
              cli=[["audit", "--mutants", "--arch", "SE_ResNeXt50_32x4d", "--size", size, size,
                    "--mutant", "se-hard-sigmoid"]])
    return cases


# --- name maps: dialects and {last} ------------------------------------------------------------
def map_dialects(root):
    cases = []
    one = np.zeros(1, np.float32)
    for sections, names in ((2000, 1000), (20_000, 1000), (50_000, 200)):
        p = root / f"map_dialects_{sections}x{names}.json"
        p.write_text(json.dumps({f"@d{i}": {"#when": f"n*{i}q", f"x{i}": "fc"}
                                 for i in range(sections)}))
        cand = root / f"map_dialects_{sections}x{names}.json.cand.npz"
        np.savez(cand, **{f"n{j}": one for j in range(names)})
        _case(cases, "map-dialects", f"{sections}x{names}", p, "map-cand",
              r"match steps|no tensor", cli=[["compare", "{dump}", str(cand), "--map", "{path}"]],
              completes=True)
    for n in (2000, 9000):                          # {last} against a reference of n names
        ref = root / f"map_last_ref_{n}.npz"
        np.savez(ref, **{f"s{i}.{i}": one for i in range(n)},
                 **{f"s{i}.{'9' * 5000}": one for i in range(3)})
        cand = root / f"map_last_cand_{n}.npz"
        np.savez(cand, **{f"s{i}": one for i in range(n)})
        p = root / f"map_last_{n}.json"
        p.write_text(json.dumps({"*": "*.{last}"}))
        _case(cases, "map-dialects", f"last-{n}", p, "none", r".", completes=True,
              named=p.name, cli=[["compare", str(ref), str(cand), "--map", "{path}"]])
    return cases


# --- torch's BatchNorm step counters, written back by convert --------------------------------
def step_counters(root):
    cases = []
    cfg, params = _tiny()
    from numpy_resnext.io import safetensors
    from numpy_resnext.io.schemes import file_state
    from numpy_resnext.plan import layer_plan
    state = dict(file_state(params, layer_plan(cfg), "torchvision"))
    for label, value in (("nan", np.array(np.nan)), ("empty", np.zeros((3, 0), np.int64)),
                         ("million", np.zeros(10 ** 6, np.int64)), ("complex", np.array(1j)),
                         ("max-int", np.array(2 ** 63 - 1))):
        p = root / f"counters_{label}.safetensors"
        if label == "complex":                           # no safetensors dtype: an .npz
            p = p.with_suffix(".npz")
            np.savez(p, **dict(state, **{"bn1.num_batches_tracked": value}))
        else:
            safetensors.write(p, dict(state, **{"bn1.num_batches_tracked": value}), {})
        _case(cases, "step-counters", label, p, "weights", r".", may_load=True,
              cli=[["convert", "--weights", "{path}", "--output", "{work}/o.pth"],
                   ["convert", "--weights", "{path}", "--output", "{work}/o.safetensors"]])
    return cases


# --- a reference's manifest: the architecture it records ----------------------------------------
def reference_manifest_arch(root):
    """compare names each reference tensor's kind from the plan of the architecture the
    manifest records: a manifest asking for millions of blocks, or not shaped as one."""
    from numpy_resnext import build
    from numpy_resnext.golden import golden_dump, write_golden
    cases = []
    cfg, params = _tiny()
    tensors, manifest = golden_dump(build(cfg, weights=params), np.zeros((1, 3, 32, 32), np.float32))
    arch, config = manifest["arch"], manifest["arch"]["config"]
    for label, hostile in (("depths-1e6", dict(arch, config=dict(config, depths=[10 ** 6] * 4))),
                           ("depths-1e30", dict(arch, config=dict(config, depths=[10 ** 30]))),
                           ("arch-list", [1, 2]), ("config-string", dict(arch, config="x")),
                           ("config-unknown-keys", dict(arch, config={"a": 1}))):
        p = root / f"ref_arch_{label}.npz"
        write_golden(p, tensors, dict(manifest, arch=hostile))
        _case(cases, "reference-manifest-arch", label, p, "reference", r".", completes=True,
              cli=[["compare", "{path}", "{dump}"]])
    return cases


# --- --preprocess: names and numbers -------------------------------------------------------
def preprocess_options(root):
    cases = []
    image = _image(root)
    for label, value in (("crop-pct-1e-300", "timm:crop_pct=1e-300"),
                         ("crop-pct-5e-324", "timm:crop_pct=5e-324"),
                         ("crop-pct-nan", "timm:crop_pct=nan"), ("size-99999", "timm:size=99999"),
                         ("resize--1", "torchvision:resize=-1"),
                         ("forged-key", f"torchvision:{FORGE}=1"),
                         ("crop-pct-5000-digits", "timm:crop_pct=" + "1" * 5000)):
        _case(cases, "preprocess-options", label, root / "preprocess", "none", r".",
              named="--preprocess",
              cli=[["classify", "ResNeXt50_32x4d", image, "--preprocess", value],
                   ["classify", "--weights", "{w}", image, "--preprocess", value]])
    return cases


GENERATORS = [hub_config_json, se_files, se_compute_size, map_dialects, step_counters,
              reference_manifest_arch, preprocess_options]
CLASSES = ["hub-config-json", "se-files", "se-compute-size", "map-dialects", "step-counters",
           "reference-manifest-arch", "preprocess-options"]
