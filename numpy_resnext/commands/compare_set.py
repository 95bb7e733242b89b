"""``numpy-resnext compare-set``: a candidate's logits over a golden-set run, judged per image
and as a whole (top-1 agreement, error quantiles, cosine, SQNR, KL, the 99 % accuracy rule)."""

import json

from .._files import save_json
from ..dataset.compare import compare_set, format_report
from ..dataset.metrics import DEFAULTS
from ._common import add_command, check_output_path, number


def add_parser(sub):
    p = add_command(
        sub, "compare-set",
        "compare a runtime's logits over a data set with a golden-set run (exit 0 pass, 1 fail)",
        "numpy-resnext compare-set val.zarr their_logits.npz --json report.json\n"
        "  numpy-resnext compare-set val.zarr --onnx resnext50.onnx\n"
        "  numpy-resnext compare-set val.zarr fp16.npy --candidate-dtype float16",
        description="Compare a candidate's logits with a complete golden-set run, image by image: "
                    "top-1 agreement, whether the candidate's top-5 holds the reference's top-1, "
                    "max |c - r| / max |r|, cosine similarity, SQNR and KL(softmax ref || softmax "
                    "candidate); then the agreement rate, error quantiles (50/90/99/99.9/max), the "
                    "worst images and, with labels, both accuracies and their ratio (MLPerf's 99 % "
                    "rule). The candidate is an .npy (N, classes) in the run's id order, an .npz "
                    "{id: logits}, another run store, or --onnx MODEL (run with onnxruntime over "
                    "the run's inputs). Passes when every image is within --rtol and the top-1 "
                    "agreement reaches --min-top1-agreement; defaults by the candidate's dtype: "
                    + ", ".join(f"{d} rtol {v['rtol']:g} / agreement {v['min_top1_agreement']:g}"
                                for d, v in DEFAULTS.items())
                    + ". Exit status 0 pass, 1 fail, 2 bad input (ids repeated, missing or extra, "
                      "wrong shape). See docs/dataset.md.")
    p.add_argument("run", metavar="RUN.zarr", help="the reference: a complete golden-set store")
    p.add_argument("candidate", nargs="?", default=None, metavar="CANDIDATE",
                   help="logits: an (N, classes) .npy in the run's id order, an .npz {id: logits}, "
                        "or another run store")
    p.add_argument("--onnx", default=None, metavar="MODEL.onnx",
                   help="run this ONNX model with onnxruntime over the run's inputs instead")
    p.add_argument("--images", default=None, metavar="SRC",
                   help="with --onnx and a run without saved inputs: where the source is now, if moved")
    p.add_argument("--rtol", type=number(0.0), default=None,
                   help="largest max |c - r| / max |r| allowed for every image (default by dtype)")
    p.add_argument("--min-top1-agreement", type=number(0.0), default=None, metavar="A",
                   help="smallest share of images whose top-1 agrees (default by dtype)")
    p.add_argument("--min-accuracy-ratio", type=number(0.0), default=None, metavar="R",
                   help="also require candidate accuracy / reference accuracy >= R (e.g. 0.99; needs labels)")
    p.add_argument("--candidate-dtype", default=None, choices=sorted(DEFAULTS),
                   help="the precision the candidate computed in, when its file's dtype does not say "
                        "(bfloat16 results saved as float32)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the report as JSON to OUT")
    return p


def run(args):
    if args.json:
        check_output_path(args.json, "--json", (".json",))
    report = compare_set(args.run, args.candidate, args.onnx, args.rtol, args.min_top1_agreement,
                         args.min_accuracy_ratio, args.candidate_dtype, args.images)
    print(format_report(report))
    if args.json:
        save_json(args.json, json.loads(json.dumps(report)))
    return 0 if report["pass"] else 1
