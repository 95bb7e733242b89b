"""The few protobuf wire-format rules Paddle's TensorDesc and ProgramDesc need.

A protobuf message is a sequence of fields; each starts with a varint key
``field_number << 3 | wire_type``. Wire types used by Paddle's framework.proto:
0 varint (ints, enums, bools), 1 fixed 64-bit (double), 2 length-delimited (strings,
bytes, sub-messages, packed repeated), 5 fixed 32-bit (float). A varint stores 7 bits per
byte, least significant group first; the high bit says "more bytes follow". Negative int64
values are written as their two's complement in 10 bytes.

Every read is bounds-checked and a failure raises :class:`FormatError` naming ``source``
and the byte offset, so a garbled file never reaches NumPy with nonsense sizes.
"""

from __future__ import annotations

from ...errors import FormatError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def read_varint(buf, pos: int, end: int, source: str, base: int = 0) -> tuple[int, int]:
    """(value, next position) of the varint at ``buf[pos:]``, not reading past ``end``.

    ``base`` is the file offset of ``buf[0]`` (for error messages only).
    """
    value, shift, start = 0, 0, pos
    while True:
        if pos >= end:
            raise FormatError(f"{source}: varint starting at byte {base + start} runs past "
                              f"the end of its message (byte {base + end})")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise FormatError(f"{source}: varint at byte {base + start} is longer than 10 "
                              "bytes")


def as_int64(value: int) -> int:
    """Reinterpret a decoded varint as a signed int64 (protobuf int64 fields)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def iter_fields(buf, start: int, end: int, source: str, base: int = 0):
    """Yield ``(field number, wire type, value, offset)`` for one message in buf[start:end].

    ``value`` is an int for varint/fixed fields and a ``(begin, end)`` index range into
    ``buf`` for length-delimited ones, so callers slice sub-messages without copying.
    ``base`` is the file offset of ``buf[0]``; ``offset`` and the positions in errors are
    file offsets.
    """
    pos = start
    while pos < end:
        offset = base + pos
        key, pos = read_varint(buf, pos, end, source, base)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise FormatError(f"{source}: protobuf field number 0 at byte {offset}")
        if wire == VARINT:
            value, pos = read_varint(buf, pos, end, source, base)
        elif wire == LENGTH:
            size, pos = read_varint(buf, pos, end, source, base)
            if pos + size > end:
                raise FormatError(f"{source}: field {number} at byte {offset} claims {size} "
                                  f"bytes but only {end - pos} remain in its message")
            value = (pos, pos + size)
            pos += size
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if pos + width > end:
                raise FormatError(f"{source}: fixed field {number} at byte {offset} runs "
                                  "past the end of its message")
            value = int.from_bytes(bytes(buf[pos:pos + width]), "little")
            pos += width
        else:
            raise FormatError(f"{source}: unsupported protobuf wire type {wire} (field "
                              f"{number}) at byte {offset}; the data is not a valid message")
        yield number, wire, value, offset
