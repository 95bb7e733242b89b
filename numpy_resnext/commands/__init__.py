"""One module per command of the ``numpy-resnext`` command line; see :mod:`numpy_resnext.cli`."""
