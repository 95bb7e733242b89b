"""The walk's ops protocol (numpy_resnext.walk.Ops): every ops object in the package
implements every method with the protocol's parameters, so the walk can hand each one the
layer it runs and no ops class has to work out where it is."""

import importlib
import inspect
import pkgutil

import pytest

import numpy_resnext
from numpy_resnext.walk import Ops

METHODS = [name for name, value in vars(Ops).items()
           if inspect.isfunction(value) and not name.startswith("_")]


def _ops_classes():
    """Every class in the package that implements the walk's ops (found by the methods it
    defines, so a new ops class cannot escape this test by not subclassing ArrayOps)."""
    found = {}
    for info in pkgutil.walk_packages(numpy_resnext.__path__, "numpy_resnext."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls is Ops or cls.__module__ != module.__name__:
                continue
            functions = {m for m in METHODS if inspect.isfunction(getattr(cls, m, None))}
            if len(functions) >= 2 and functions & set(vars(cls)):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


CLASSES = _ops_classes()


def test_the_protocol_names_every_method_the_walk_calls():
    import numpy_resnext.walk as walk
    source = inspect.getsource(walk)
    called = {m for m in METHODS if f"ops.{m}(" in source}
    # conv, bn, relu, pool, add, global_pool, fc; the SE layer's squeeze, se_fc, gate, scale
    assert called == set(METHODS) and len(METHODS) == 11


def test_the_ops_classes_are_found():
    names = set(CLASSES)
    for expected in ("numpy_resnext.walk.ArrayOps", "numpy_resnext.shapes.ShapeOps",
                     "numpy_resnext.onnx_export.graph.OnnxOps",
                     "numpy_resnext.golden.mutants.NoReluAfterAdd",
                     "numpy_resnext.golden.mutants.SEHardSigmoid",
                     "numpy_resnext.golden.mutation_audit._RecordingShapeOps",
                     "numpy_resnext.golden.precision.RoundedOps"):
        assert expected in names
    assert len(names) >= 15                     # the mutants and precision formats too


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_ops_class_follows_the_protocol(name):
    cls = CLASSES[name]
    for method in METHODS:
        impl = getattr(cls, method, None)
        assert impl is not None, f"{name} lacks {method}"
        want = list(inspect.signature(getattr(Ops, method)).parameters)
        got = list(inspect.signature(impl).parameters)
        assert got == want, f"{name}.{method}{tuple(got)}: the protocol has {tuple(want)}"
