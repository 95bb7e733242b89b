"""The pass over a pickle's opcodes that runs before the unpickler sees a byte of it.

The C unpickler is fast and never calls anything we did not allow (see :mod:`.allow`),
but some harm needs no call at all:

- a counted string allocates its declared length first (BINBYTES of 4 GB in a 2 kB file),
  FRAME does the same, and ``PUT n`` grows the memo table to 2n entries;
- every object costs memory: a 19 MB pickle of 9.5 million empty lists takes gigabytes
  to load and to convert;
- every dict key and set item is hashed while loading: a tuple nested a million deep used
  as a key overflows the C stack, and thousands of keys sharing one hash make loading
  quadratic. Integers that far apart share one hash (all multiples of 2**61 - 1 do), but
  so can small ones inside a tuple or a frozenset, whose hash can be solved for.

So this pass walks the opcodes once, checks every length against the bytes left and every
memo index against the opcodes seen, and simulates the unpickler's stack with one small
record per object (:class:`_Sim`): how deeply it nests (updated when APPEND/SETITEM/BUILD
add to it, and shared through the memo exactly as the objects are), whether it holds an
integer of 2**61 or more, and whether it may be a dict key at all. Refused before loading:
more than :attr:`Limits.max_objects` objects; a container deeper than
:attr:`Limits.max_depth`; a dict key or set item that is not a string, bytes, an integer
below 2**61, a bool or None (weight files key by name, optimizer states by small
integers; those hash without collisions an input could choose); an allowed callable
given an integer of 2**61 or more. The callables that hash their arguments (dict, set,
frozenset, OrderedDict) check the same key rule when called (:mod:`.allow`).
Payloads are skipped with ``seek``: the pass costs about a millisecond per thousand
opcodes whatever the tensor sizes.
"""

from __future__ import annotations

import pickletools
from array import array

from ...bounded import get_limits

BIG_INT = (1 << 61) - 1  # CPython's hash modulus: below it, integers hash to themselves
FORBIDDEN = {"PERSID", "BINPERSID", "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}
_PREFIX = {pickletools.TAKEN_FROM_ARGUMENT1: (1, False),
           pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
           pickletools.TAKEN_FROM_ARGUMENT4U: (4, False),
           pickletools.TAKEN_FROM_ARGUMENT8U: (8, False)}
_INT_OPS = {"BININT": True, "BININT1": False, "BININT2": False}
_FROM_MARK = {"TUPLE", "LIST", "DICT", "FROZENSET", "INST", "OBJ"}
_KEYED = {"DICT": 2, "SETITEMS": 2, "FROZENSET": 1, "ADDITEMS": 1}
_CALLS = {"REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3}


class Refused(Exception):
    """The pickle asks for something a weight file never needs."""


class Truncated(Exception):
    """A length or opcode that runs past the end of the file."""


BIG, KEYLESS = 1, 2      # object flags: holds an integer >= 2**61; may not be a dict key
_PLAIN = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "BINSTRING",
          "SHORT_BINSTRING", "STRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "NONE",
          "NEWTRUE", "NEWFALSE", "INT", "LONG", "BININT", "BININT1", "BININT2", "LONG1",
          "LONG4"}       # what pushes a str, bytes, int, bool or None: a key if small


class _Sim:
    """The unpickler's stack and memo, over one record per object: its nesting depth and
    its flags (``BIG``, ``KEYLESS``), in two arrays indexed by the object's number. The
    stack holds object numbers (None for MARK), the memo maps memo indices to them."""

    def __init__(self, max_depth: int, max_objects: int):
        self.stack, self.max_depth, self.max_objects = [], max_depth, max_objects
        self.memo = array("q")                     # memo index -> object number, -1: unset
        self.memo_len = 0                          # indices set (MEMOIZE's next index)
        self.depth, self.flags = array("L"), bytearray()

    def new(self, depth, flags, at):
        n = len(self.flags)
        if n >= self.max_objects:
            raise Refused(f"more than {self.max_objects:,} objects (at byte {at}); a state "
                          "dict's pickle holds about 17 per tensor (5,500 for ResNeXt50, "
                          "under 20,000 for the largest ResNeXt), so this is not a weight file")
        if depth > self.max_depth:
            raise Refused(f"containers nested more than {self.max_depth} deep at byte {at}")
        self.depth.append(depth)
        self.flags.append(flags)
        return n

    def container(self, items, at):
        depth, flags = self.depth, self.flags
        d, f = 0, KEYLESS
        for c in items:                          # a plain loop: most containers hold 1-5
            if depth[c] > d:
                d = depth[c]
            f |= flags[c] & BIG
        return self.new(d + 1, f, at)

    def pop(self, at, name):
        if not self.stack or self.stack[-1] is None:
            raise Refused(f"{name} at byte {at} pops from an empty stack (corrupt pickle)")
        return self.stack.pop()

    def pop_mark(self, at, name):
        stack = self.stack
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is None:
                items = stack[i + 1:]
                del stack[i:]
                return items
        raise Refused(f"{name} at byte {at} without a MARK before it (corrupt pickle)")

    def add_to(self, items, at, name):
        if not self.stack or self.stack[-1] is None:
            raise Refused(f"{name} at byte {at} has no object to add to (corrupt pickle)")
        target, depth, flags = self.stack[-1], self.depth, self.flags
        for c in items:
            depth[target] = max(depth[target], depth[c] + 1)
            flags[target] |= flags[c] & BIG
        if depth[target] > self.max_depth:
            raise Refused(f"containers nested more than {self.max_depth} deep at byte {at}")

    def check_keys(self, keys, at, name):
        flags = self.flags
        for c in keys:
            if flags[c] & BIG:
                raise Refused(f"{name} at byte {at}: a dict key or set item holds an integer "
                              "of 2**61 or more (such keys can be made to share one hash and "
                              "make loading quadratic; weight files key by name)")
            if flags[c] & KEYLESS:
                raise Refused(f"{name} at byte {at}: a dict key or set item that is not a "
                              "string, bytes, an integer below 2**61, a bool or None (tuple, "
                              "frozenset and float keys can be solved to share one hash and "
                              "make loading quadratic; weight files key by name)")

    def memo_get(self, index, at):
        memo = self.memo
        got = memo[index] if index is not None and 0 <= index < len(memo) else -1
        return got if got >= 0 else self.new(0, KEYLESS, at)

    def memo_put(self, index, value):
        memo = self.memo
        if index == len(memo):                   # MEMOIZE, and PUT in order: the usual case
            memo.append(value)
            self.memo_len += 1
            return
        if index > len(memo):
            memo.extend([-1] * (index + 1 - len(memo)))
        self.memo_len += memo[index] < 0
        memo[index] = value

    def push(self, flags, at):
        """Push one new object of depth 0 (the common case, inlined for speed)."""
        n = len(self.flags)
        if n >= self.max_objects:
            self.new(0, flags, at)               # raises with the message
        self.depth.append(0)
        self.flags.append(flags)
        self.stack.append(n)

    def step(self, name, at, value):
        """Apply opcode ``name`` (``value``: its int argument, or a big-int flag)."""
        stack = self.stack
        if name == "MARK":
            stack.append(None)
        elif name in _PLAIN:                     # the commonest: one new key-able object
            self.push(BIG | KEYLESS if value is True else 0, at)
        elif name in _FROM_MARK:
            items = self.pop_mark(at, name)
            if name in _KEYED:
                self.check_keys(items[::_KEYED[name]], at, name)
            stack.append(self.container(items, at))
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            items = self.pop_mark(at, name)
            if name in _KEYED:
                self.check_keys(items[::_KEYED[name]], at, name)
            self.add_to(items, at, name)
        elif name in ("APPEND", "BUILD"):
            self.add_to([self.pop(at, name)], at, name)
        elif name == "SETITEM":
            v, k = self.pop(at, name), self.pop(at, name)
            self.check_keys([k], at, name)
            self.add_to([k, v], at, name)
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            items = [self.pop(at, name) for _ in range(int(name[-1]))]
            stack.append(self.container(items, at))
        elif name in _CALLS:
            items = [self.pop(at, name) for _ in range(_CALLS[name])]
            if any(self.flags[c] & BIG for c in items):
                raise Refused(f"{name} at byte {at} passes an integer of 2**61 or more to "
                              "a constructor (no weight file does)")
            stack.append(self.container(items[:-1], at))
        elif name == "POP":
            if not stack:
                raise Refused(f"POP at byte {at} on an empty stack (corrupt pickle)")
            stack.pop()
        elif name == "POP_MARK":
            self.pop_mark(at, name)
        elif name == "DUP":
            stack.append(self.pop(at, name))
            stack.append(stack[-1])
        elif name in ("BINPERSID", "STACK_GLOBAL"):   # BINPERSID: only when a caller allows it
            for _ in range(1 if name == "BINPERSID" else 2):
                self.pop(at, name)
            stack.append(self.new(0, KEYLESS, at))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if not stack or stack[-1] is None:
                raise Refused(f"{name} at byte {at} with nothing to memoise (corrupt pickle)")
            self.memo_put(self.memo_len if name == "MEMOIZE" else value, stack[-1])
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(self.memo_get(value, at))
        elif name in ("PROTO", "FRAME", "STOP"):
            pass
        else:                                    # any other opcode pushes one new object
            self.push(KEYLESS, at)


def _int_value(name, payload: bytes):
    """The int a pushing opcode carries, or True for 'an integer of 2**61 or more'."""
    if name in _INT_OPS:
        return int.from_bytes(payload, "little", signed=_INT_OPS[name])
    if len(payload) > 9:
        return True
    value = int.from_bytes(payload, "little", signed=True)
    return True if abs(value) >= BIG_INT else value


def scan_opcodes(fileobj, size: int, forbidden=FORBIDDEN) -> None:
    """Walk and simulate every opcode as described above; leaves the stream where it was.

    ``forbidden``: opcode names refused outright (a reader of a format with persistent ids,
    such as torch's, passes a set without PERSID/BINPERSID and resolves them itself).
    """
    start = fileobj.tell()
    pos, count = start, 0
    limits = get_limits()
    sim = _Sim(limits.max_depth, limits.max_objects)
    while True:
        count += 1
        code = fileobj.read(1)
        if not code:
            raise Truncated(f"the pickle ends at byte {pos} without its STOP opcode")
        op = pickletools.code2op.get(code.decode("latin1"))
        if op is None:
            raise Refused(f"invalid pickle opcode 0x{code.hex()} at byte {pos}")
        name = op.name
        if name in forbidden:
            raise Refused(f"opcode {name} at byte {pos} (not used by weight files)")
        at = pos
        pos += 1
        arg, value = op.arg, None
        if arg is None:
            pass
        elif arg.n >= 0:
            payload = fileobj.read(arg.n)
            if len(payload) != arg.n:
                raise Truncated(f"opcode {name} at byte {at} is cut off by the end of "
                                f"the file (byte {size})")
            pos += arg.n
            value = int.from_bytes(payload, "little")
            if name in _INT_OPS:
                value = _int_value(name, payload)
            if name in ("BINPUT", "LONG_BINPUT"):
                _check_memo(value, count, name, at)
            if name == "FRAME" and value > size - pos:
                raise Truncated(f"FRAME at byte {at} claims {value} bytes, only "
                                f"{size - pos} remain")
        elif arg.n == pickletools.UP_TO_NEWLINE:
            for _ in range(2 if arg.name.endswith("_pair") else 1):  # GLOBAL: module, name
                line = fileobj.readline()
                if not line.endswith(b"\n"):
                    raise Truncated(f"opcode {name} at byte {at} has no end of line")
                pos += len(line)
            if name in ("PUT", "GET", "INT", "LONG"):
                text = line.strip().rstrip(b"L")
                if len(text) > 19 or not text.lstrip(b"-").isdigit():
                    if name in ("PUT", "GET") or len(text) <= 19:
                        raise Refused(f"{name} at byte {at} with argument {line[:20]!r}")
                    value = True                 # a decimal integer of 20+ digits
                else:
                    value = int(text)
                    if name in ("INT", "LONG"):
                        value = True if abs(value) >= BIG_INT else value
                if name == "PUT":
                    _check_memo(value, count, name, at)
        else:
            width, signed = _PREFIX[arg.n]
            raw = fileobj.read(width)
            if len(raw) != width:
                raise Truncated(f"length of {name} at byte {at} is cut off")
            length = int.from_bytes(raw, "little", signed=signed)
            pos += width
            if length < 0 or length > size - pos:
                raise Truncated(f"{name} at byte {at} claims {length} bytes, only "
                                f"{size - pos} remain in the file")
            if name in ("LONG1", "LONG4"):
                value = _int_value(name, fileobj.read(min(length, 10)))
            pos = fileobj.seek(pos + length)
        sim.step(name, at, value)
        if name == "STOP":
            break
    fileobj.seek(start)


def _check_memo(index: int, count: int, name: str, at: int) -> None:
    if index > count:
        raise Refused(f"{name} at byte {at} uses memo index {index} after only {count} "
                      "opcodes (a corrupt or hostile index would grow the memo table)")
