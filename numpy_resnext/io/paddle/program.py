"""Names (and declared shapes) of the persistable variables of a saved Paddle program.

A combined parameters file stores tensors without names; the program saved beside it
says which they are. Two program formats exist:

- legacy ProgramDesc protobuf (``__model__``, ``*.pdmodel``, Paddle < 3 and Paddle 3 with
  ``FLAGS_enable_pir_api=0``), read by hand with :mod:`.protobuf`::

      ProgramDesc  1: blocks (BlockDesc, repeated)
      BlockDesc    3: vars (VarDesc, repeated)
      VarDesc      1: name   2: type (VarType)   3: persistable (bool)
      VarType      1: type enum (7 DENSE_TENSOR; 9 FEED_MINIBATCH, 10 FETCH_LIST and
                      17 RAW are bookkeeping, never saved)
                   3: dense_tensor (DenseTensorDesc 1: TensorDesc 1: data_type, 2: dims)

- Paddle 3 PIR JSON (``*.json``): ``{"base_code": {"magic": "pir", ...}, "program": ...}``;
  every parameter is an op ``{"#": "p", "A": [.., .., .., "<name>"], "O": {"TT": {"D":
  [dtype, dims, ...]}}}``.

Paddle's save_inference_model / jit.save write the persistables in ``sorted()`` order of
their names (Python string order), whichever format the program is in;
:func:`persistable_variables` returns them in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...bounded import expect, first_bytes, load_json, read_bytes, short_repr
from ...errors import FormatError
from .protobuf import LENGTH, VARINT, as_int64, iter_fields

__all__ = ["Variable", "persistable_variables", "read_program_desc", "read_pir_json"]

SKIPPED_TYPES = {9: "FEED_MINIBATCH", 10: "FETCH_LIST", 17: "RAW"}
PARAMETER_OPS = ("p", "builtin.parameter")


@dataclass(frozen=True)
class Variable:
    """A persistable variable as the program declares it (dims None when unknown)."""

    name: str
    dims: tuple | None = None


def _dense_dims(buf, start, end, where):
    """Declared dims from VarType.dense_tensor (field 3) → DenseTensorDesc → TensorDesc."""
    for number, wire, value, _ in iter_fields(buf, start, end, where):
        if number == 3 and wire == LENGTH:
            for n2, w2, v2, _ in iter_fields(buf, *value, where):
                if n2 == 1 and w2 == LENGTH:
                    return tuple(as_int64(v) for n3, w3, v, _ in
                                 iter_fields(buf, *v2, where) if n3 == 2 and w3 == VARINT)
    return None


def _var_desc(buf, start, end, where):
    """(name, type code, persistable, dims) of one VarDesc."""
    name, code, persistable, dims = None, None, False, None
    for number, wire, value, offset in iter_fields(buf, start, end, where):
        if number == 1 and wire == LENGTH:
            try:
                name = bytes(buf[value[0]:value[1]]).decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError(f"{where}: variable name at byte {offset} is not UTF-8") \
                    from None
        elif number == 2 and wire == LENGTH:
            for n2, w2, v2, _ in iter_fields(buf, *value, where):
                if n2 == 1 and w2 == VARINT:
                    code = v2
            dims = _dense_dims(buf, *value, where)
        elif number == 3 and wire == VARINT:
            persistable = bool(value)
    if name is None:
        raise FormatError(f"{where}: VarDesc at byte {start} has no name (field 1)")
    return name, code, persistable, dims


def read_program_desc(path) -> list[Variable]:
    """Persistable, saved variables of a legacy ProgramDesc file, sorted by name."""
    path = Path(path)
    buf = read_bytes(path, "program file")
    where = str(path)
    found = {}
    blocks = 0
    for number, wire, value, _ in iter_fields(buf, 0, len(buf), where):
        if number != 1 or wire != LENGTH:
            continue
        blocks += 1
        for n2, w2, v2, _ in iter_fields(buf, *value, where):
            if n2 == 3 and w2 == LENGTH:
                name, code, persistable, dims = _var_desc(buf, *v2, where)
                if persistable and code not in SKIPPED_TYPES:
                    found.setdefault(name, Variable(name, dims))
    if blocks == 0:
        raise FormatError(f"{path}: no program blocks found; expected a Paddle ProgramDesc "
                          "(__model__ / .pdmodel) protobuf")
    return [found[name] for name in sorted(found)]


def _walk_ops(node):
    """Every op dict of a PIR JSON program, in any region/block nesting (the nesting is
    bounded by :func:`load_json`; the walk uses its own stack, not recursion)."""
    todo = [node]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "#" in node and "A" in node:
                yield node
            todo.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            todo.extend(reversed(node))


def _pir_dims(op, path, name):
    """Declared dims of a parameter op, None when the op does not say."""
    try:
        dims = op["O"]["TT"]["D"][1]
    except (KeyError, IndexError, TypeError):
        return None
    if not (isinstance(dims, list) and len(dims) <= 32
            and all(type(d) is int and -1 <= d < 2 ** 40 for d in dims)):
        raise FormatError(f"{path}: parameter {short_repr(name)} declares dims "
                          f"{short_repr(dims)}; expected a list of at most 32 integers")
    return tuple(dims)


def read_pir_json(path) -> list[Variable]:
    """Parameters of a Paddle 3 PIR JSON program, sorted by name."""
    path = Path(path)
    doc = load_json(path, "PIR JSON program")
    base = doc.get("base_code") if isinstance(doc, dict) else None
    magic = base.get("magic") if isinstance(base, dict) else None
    if magic != "pir":
        raise FormatError(f"{path}: JSON without the PIR header base_code.magic == 'pir' "
                          f"(found {short_repr(magic)}); not a Paddle 3 program")
    program = expect(doc.get("program"), (dict, list), "program", str(path))
    found = {}
    for op in _walk_ops(program):
        if not isinstance(op["#"], str) or op["#"] not in PARAMETER_OPS:
            continue
        attrs = op["A"]
        if not (isinstance(attrs, list) and attrs and isinstance(attrs[-1], str)):
            raise FormatError(f"{path}: parameter op with attributes {short_repr(attrs)}; "
                              "expected [.., .., .., name]")
        found.setdefault(attrs[-1], Variable(attrs[-1], _pir_dims(op, path, attrs[-1])))
    return [found[name] for name in sorted(found)]


def persistable_variables(path) -> list[Variable]:
    """Saved variables of a program file (JSON or protobuf, told apart by content)."""
    path = Path(path)
    head = first_bytes(path, 1, "program file")
    if head in (b"{", b"[") or path.suffix == ".json":
        return read_pir_json(path)
    return read_program_desc(path)
