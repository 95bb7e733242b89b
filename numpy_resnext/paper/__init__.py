"""The paper and the teaching tools, built on the layer plan and the walk.

branches (a real block as its C branches, early concatenation and the grouped form: Fig. 3),
explain (one block laid open, with its numbers and a figure), claims (the paper's complexity
claims recomputed: ``numpy-resnext audit``), figures (the lecture figures of docs/figures),
digits (train-demo: a small ResNeXt trained on scikit-learn's digits).
"""
