"""Optional dependencies: the one place that imports one and names the extra to install.

The core needs NumPy only. Plots, image decoding, ONNX, the digits data set and the
data-set goldens each come with an extra of ``pip install 'numpy-resnext[EXTRA]'``
(pyproject.toml lists them); :func:`require` imports a module of one and, when it is
missing, raises :class:`MissingExtraError` naming the extra and what needed it.
"""

from __future__ import annotations

import importlib

from .errors import ResNeXtError

# importable module -> (the extra that installs it, the distribution's name on PyPI)
EXTRAS = {
    "matplotlib": ("plot", "matplotlib"),
    "PIL": ("image", "Pillow"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnx", "onnxruntime"),
    "sklearn": ("digits", "scikit-learn"),
    "dask": ("dataset", "dask[distributed]"),
    "distributed": ("dataset", "dask[distributed]"),
    "zarr": ("dataset", "zarr>=3.1.3"),
    "threadpoolctl": ("dataset", "threadpoolctl"),
    "skimage": ("photos", "scikit-image"),
    "torch": ("torch", "torch"),
}


class MissingExtraError(ResNeXtError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


def install_hint(module: str) -> str:
    """``pip install 'numpy-resnext[EXTRA]'`` for ``module`` (its top-level name)."""
    top = module.split(".")[0]
    return f"pip install 'numpy-resnext[{EXTRAS[top][0]}]'" if top in EXTRAS else f"pip install {top}"


def require(module: str, purpose: str, otherwise: str = ""):
    """``module`` imported, or MissingExtraError: '<purpose> needs <distribution>, which
    is not installed (...); install it with pip install ...' (then ``otherwise``, another
    way round, when given)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        name = EXTRAS[top][1] if top in EXTRAS else top
        raise MissingExtraError(f"{purpose} needs {name}, which is not installed ({exc}); "
                                f"install it with {install_hint(module)}"
                                + (f" {otherwise}" if otherwise else "")) from None


def pyplot(purpose: str = "drawing a figure"):
    """matplotlib.pyplot on the file-only Agg backend (no screen is ever needed)."""
    matplotlib = require("matplotlib", purpose)
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")
