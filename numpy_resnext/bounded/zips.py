"""Zip archives (.npz, torch.save's zip) opened with every local header checked once.

``zipfile`` reads the central directory at the end of the archive and trusts it: nothing
stops 300 central records from pointing at one 4 MiB member (1.2 GiB read from a 4 MB
file), or at a local header whose name is another member's. The readers here go to the
data through the local headers themselves, so :func:`open_zip` checks them all first:

- a local header signature at each record's offset, its name equal to the central
  record's, its compression method the same;
- every member's span (local header, name, extra field, data) inside the file and before
  the central directory, and no two spans sharing a byte: each local header, and each
  byte of data, belongs to one member.

It returns the archive, its members (at most ``max_members``) and where each member's
data starts.
"""

from __future__ import annotations

import os
import struct
import zipfile

from ..errors import FormatError, InputError
from .limits import short_repr

LOCAL = b"PK\x03\x04"
UTF8_NAMES = 0x800


def open_zip(f, size: int, where: str, what: str, max_members: int):
    """(ZipFile, [ZipInfo], {name: data offset}) of the archive file object ``f`` of ``size``
    bytes; FormatError naming ``where`` for a damaged archive or members that share bytes."""
    try:
        z = zipfile.ZipFile(f)
    except Exception as exc:  # zipfile parses the directory of a hostile file: BadZipFile,
        # NotImplementedError (version), UnicodeDecodeError (names), struct.error ...
        raise FormatError(f"{where}: not a readable {what}: {type(exc).__name__}: "
                          f"{str(exc)[:200]}") from None
    try:
        infos = z.infolist()
        if len(infos) > max_members:
            raise FormatError(f"{where}: {len(infos)} members; at most {max_members}")
        starts = _check_local_headers(f, infos, size, getattr(z, "start_dir", size), where)
    except BaseException:
        z.close()
        raise
    return z, infos, starts


def _reader(f, where):
    """read(offset, n): positioned reads, with one system call each where the file has a
    descriptor (a buffered seek + read would fill 8 KiB per member header); a failing read
    is an InputError naming ``where``."""
    try:
        fd = f.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None

    def read(at, n):
        try:
            if fd is not None and hasattr(os, "pread"):
                return os.pread(fd, n, at)
            f.seek(at)
            return f.read(n)
        except OSError as exc:
            raise InputError(f"{where}: cannot read the zip archive ({exc.strerror or exc}; "
                             "the read failed after the file was opened)") from None
    return read


def _check_local_headers(f, infos, size, central_at, where):
    spans, starts = [], {}
    read = _reader(f, where)
    for info in infos:
        name = short_repr(info.filename, 80)
        at = info.header_offset
        head = read(at, 30 + 256)                        # the header and most names
        if len(head) < 30 or head[:4] != LOCAL:
            raise FormatError(f"{where}: member {name}: no local header at byte {at} (a "
                              "damaged or hand-made zip directory)")
        flags, method = struct.unpack("<HH", head[6:10])
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        raw = head[30:30 + name_len] if name_len <= 256 else read(at + 30, name_len)
        local = raw.decode("utf-8" if flags & UTF8_NAMES else "cp437", "replace")
        if local != info.orig_filename or method != info.compress_type:
            raise FormatError(f"{where}: member {name}: the local header at byte {at} "
                              f"describes {short_repr(local, 80)} (method {method}), the "
                              f"directory {name} (method {info.compress_type}); each central "
                              "record must point at its own member")
        start = at + 30 + name_len + extra_len
        end = start + info.compress_size
        if end > min(size, central_at):
            raise FormatError(f"{where}: member {name}: its {info.compress_size} bytes from "
                              f"byte {start} run past the end of the members (byte "
                              f"{min(size, central_at)}): truncated or damaged")
        spans.append((at, end, name))
        starts[info.filename] = start
    spans.sort()
    for (a0, a1, a), (b0, b1, b) in zip(spans, spans[1:]):
        if b0 < a1:
            same = "the same local header" if a0 == b0 else f"bytes {b0}..{min(a1, b1)}"
            raise FormatError(f"{where}: members {a} and {b} share {same} (at byte {b0}); "
                              "each local header and each byte of data belongs to one member")
    return starts
