"""Weight files of every framework, read and written with NumPy only (no framework is
ever imported).

One module per format, each with the same verbs: ``detect(path) -> bool``, ``read(path,
ema=None) ->`` :class:`~.weightfile.WeightFile` (the tensors under the file's own names,
with what was read, notes and extras) and, where the format is written, ``write(path,
tensors, metadata=None)``:

===================  =====================================================================
:mod:`.paddle`       every Paddle layout: paddle.save pickles, tensor records (legacy
                     directories, ``.tar``, combined ``.pdiparams``), programs
:mod:`.torch`        torch.save files (zip and legacy, any extension), checkpoint wrappers
:mod:`.safetensors`  ``.safetensors``
:mod:`.hub`          shard indexes and Hugging Face-style directories (read only)
:mod:`.npz`          canonical ``.npz``
===================  =====================================================================

What they share: :mod:`.unpickle` (the one restricted unpickler, its opcode scan and its
one allow-list), :mod:`.dtypes` (the one table of element types and each format's
spelling), :mod:`.schemes` (the one table of naming schemes, for reading and writing).

On top: :func:`read_weights` (any format, told apart by :mod:`.formats`),
:func:`load_weights` (canonical names, the architecture inferred by :mod:`.infer`, checked
by :func:`numpy_resnext.params.validate`; :mod:`.load`), :func:`write_weights` (the format
from the extension) and :func:`read_paddle` (:func:`.paddle.read`).
"""

from .formats import FORMATS, read_weights, write_weights
from .load import LoadedWeights, load_weights
from .paddle import read as read_paddle
from .weightfile import WeightFile

__all__ = ["FORMATS", "LoadedWeights", "WeightFile", "load_weights", "read_paddle",
           "read_weights", "write_weights"]
