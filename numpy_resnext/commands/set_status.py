"""``numpy-resnext set-status``: what a golden-set run store holds."""

import json

from ..dataset.status import format_status, status
from ._common import add_command


def add_parser(sub):
    p = add_command(
        sub, "set-status", "shards done and missing, images and failures of a golden-set run store",
        "numpy-resnext set-status val.zarr --json",
        description="Report a golden-set run store: shards done and missing, images computed and "
                    "failed (with each failure's message), shards retried after a worker died, "
                    "the last run. Exit status 0 when every shard is done, 1 when some are "
                    "missing (run golden-set again to finish), 2 when the store cannot be read.")
    p.add_argument("store", metavar="RUN.zarr", help="a store written by golden-set")
    p.add_argument("--json", action="store_true",
                   help="one JSON object (keys include shards, done, missing, images, failed, failures)")
    return p


def run(args):
    s = status(args.store)
    print(json.dumps(s, indent=1) if args.json else format_status(s))
    return 0 if s["complete"] else 1
