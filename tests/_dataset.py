"""Shared set-up of the data-set lanes: the optional packages (skipping with a reason), a tiny
custom network saved as a weight file, generated image folders, and running the CLI.

The lanes that write run stores need zarr >= 3.1.3 (Python >= 3.11, NumPy >= 2) and
threadpoolctl; the Dask lanes also need dask[distributed]. The CI compatibility lanes
(NumPy 1.26, Python 3.10) install none of them and skip with the reason.
"""

import contextlib
import io

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext._files import save_npz
from numpy_resnext.cli import main
from numpy_resnext.dataset.synthetic import write_folder

from _onnx_lane import optional

TINY = dict(depths=(1, 1, 1, 1), cardinality=4, base_width=4, num_classes=10)
# small inputs for the tiny network: images resized to a short side of 40, cropped to 32
SMALL = "paddleclas:resize=40,crop=32"


def need_store():
    """zarr and threadpoolctl, or skip."""
    why = "run stores need pip install 'numpy-resnext[dataset]' (zarr 3 needs Python >= 3.11, NumPy >= 2)"
    zarr = optional("zarr", why)
    if int(zarr.__version__.split(".")[0]) < 3:
        pytest.skip(f"zarr {zarr.__version__} is installed; run stores need zarr >= 3.1.3")
    optional("threadpoolctl", why)
    return zarr


def need_dask():
    need_store()
    return optional("distributed", "the Dask lanes need pip install 'numpy-resnext[dataset]'")


def tiny_weights(path, seed=0, dtype="float64", **overrides):
    """A tiny custom network's seeded weights saved as .npz (its architecture is inferred
    from the file: no name needed on the command line)."""
    model = nrx.build(nrx.custom(**{**TINY, **overrides}), seed=seed, dtype=dtype)
    save_npz(path, dict(model.params))
    return path


def image_folder(root, n=12, fmt="npy", layout="imagefolder", size=None, seed=0):
    """n generated images under root (uint8 .npy by default: no Pillow needed)."""
    write_folder(root, n, "generated", seed, fmt, layout, size)
    return root


def cli(*argv):
    """(exit status, stdout, stderr) of the command line, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def serial_set(root, n, *options):
    """(weights, images, store): a tiny network's weights, n generated images and a complete
    golden-set run over them in this process (``options`` added to the command)."""
    weights = tiny_weights(root / "tiny.npz")
    images = image_folder(root / "images", n=n)
    out = root / "serial.zarr"
    code, _, err = cli("golden-set", "--weights", weights, "--images", images, "--output", out,
                       "--workers", 0, "--threads", 1, "--preprocess", SMALL, *options)
    assert code == 0, err
    return weights, images, out


def logits_bytes(store_path):
    import zarr          # only called by lanes that checked for zarr
    return np.asarray(zarr.open_group(str(store_path), mode="r")["logits"][:]).tobytes()
