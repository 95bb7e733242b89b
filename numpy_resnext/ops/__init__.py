"""The ops: plain functions over arrays, each forward beside its backward.

conv (grouped convolution by im2col, blocked in cache-sized pieces), im2col (the columns and
their order), batchnorm, activations, pooling, linear, loss (softmax cross-entropy), cpu
(the cache sizes and row runs the fast ops use) and naive (every op and its backward as
plain loops, with the same signatures: the learner's path and the tests' twins). The
common ones are importable from the package itself (``numpy_resnext.conv2d`` ...).
"""
