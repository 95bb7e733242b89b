"""Reference outputs over a whole data set, on Dask, stored in Zarr; and comparing a runtime's.

Ports are accepted over data sets, not single inputs (MLPerf's 99 % of the reference's top-1,
relative accuracy gates, per-output error quantiles). This package computes a model's logits
(and, where asked, statistics and full intermediates) for every image of a folder, list file
or tensor file, resumably, one task per shard, and compares a candidate's outputs with them.

Modules:

- :mod:`.sources`: the images (folders, ImageFolder trees, val_list / val_map lists, .npy /
  .npz tensors, generated and scikit-image sets) and reading one of them;
- :mod:`.synthetic`: data sets that need no download;
- :mod:`.store`: the Zarr v3 run store, its manifest and fingerprint, a shard's writes;
- :mod:`.shard`: one shard computed where it runs (model cached per process, BLAS threads set);
- :mod:`.executors`: in this process, or Dask (a LocalCluster or a cluster's scheduler);
- :mod:`.run`: a golden-set run, new or resumed;
- :mod:`.status`: what a store holds (set-status);
- :mod:`.metrics`, :mod:`.candidates`, :mod:`.compare`: compare-set;
- :mod:`.mutation_set`: the mutation audit judged over a seeded set.

Dask (``distributed``), Zarr and threadpoolctl are the ``dataset`` extra
(``pip install 'numpy-resnext[dataset]'``); they are imported when used, through
:func:`numpy_resnext._optional.require`, which names the extra when one is missing.
"""

from .run import Options, run_golden_set

__all__ = ["Options", "run_golden_set"]
