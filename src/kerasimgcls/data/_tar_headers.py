"""Check a tar archive's headers against the resource budget before ``tarfile`` reads it.

``tarfile`` reads the body of an extended header (a PAX header, a GNU long name
or long link) into memory whole before anything can look at it: a 1.5 GiB long
name, 1.5 MB compressed, takes 1.6 GB, and a 5 GiB one raises ``MemoryError``.
So the 512-byte headers are walked here first, skipping every body unread, and
each extended header's size, the number of members and the bytes of the whole
archive are checked against :class:`kerasimgcls._validation.ResourceBudget`.
The walk costs one decompression of the archive and constant memory.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib
from collections.abc import Iterator
from typing import IO, Any, cast

from kerasimgcls._validation import limit

__all__ = ["check_tar_headers"]

_BLOCK = 512
_EXTENDED = {b"x": "PAX header", b"g": "PAX global header", b"L": "GNU long name",
             b"K": "GNU long link"}  # fmt: skip
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def check_tar_headers(path: str | os.PathLike[str], fix: str) -> None:
    """Walk the headers of the tar archive ``path`` (gzip, bz2, xz or plain).

    Args:
        path: The archive, a regular file already checked by the caller.
        fix: What the user can do, appended to every message.

    Raises:
        ValueError: If it is not a tar archive (a zip, say), a header is damaged,
            an extended header is larger than ``max_archive_header_bytes``, or
            the archive has more than ``max_archive_members`` members or more
            than ``max_archive_bytes`` bytes.
    """
    name = repr(os.fspath(path))
    max_header = limit("max_archive_header_bytes")
    max_members = limit("max_archive_members")
    max_total = limit("max_archive_bytes")
    with open(path, "rb") as raw:
        magic = raw.read(6)
        raw.seek(0)
        if magic.startswith(_ZIP_MAGIC):
            raise ValueError(f"{name} is a zip archive, not a tar archive. {fix}")
        try:
            with _decompressed(raw, magic) as stream:
                _walk(stream, name, fix, max_header, max_members, max_total)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise ValueError(
                f"cannot read {name} (truncated or not a tar archive): {reason}. {fix}"
            ) from err


def _decompressed(raw: IO[bytes], magic: bytes) -> IO[bytes]:
    stream: Any = raw
    if magic.startswith(b"\x1f\x8b"):
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif magic.startswith(b"BZh"):
        stream = bz2.BZ2File(raw, mode="rb")
    elif magic.startswith(b"\xfd7zXZ\x00"):
        stream = lzma.LZMAFile(raw, mode="rb")  # noqa: SIM115 - closed by the caller
    return cast("IO[bytes]", stream)


def _walk(
    stream: IO[bytes],
    name: str,
    fix: str,
    max_header: int,
    max_members: int,
    max_total: int,
) -> None:
    total = members = 0
    pending: int | None = None  # a PAX "size" record: the next member's size
    for offset, header in _headers(stream, name, fix):
        kind, size = header[156:157], _size(header, name, offset, fix)
        if kind not in _EXTENDED and pending is not None:
            size, pending = pending, None
        padded = -(-size // _BLOCK) * _BLOCK
        if kind in _EXTENDED and size > max_header:
            raise ValueError(
                f"{name} has a {_EXTENDED[kind]} of {size:,} bytes at byte "
                f"{offset:,}, more than the {max_header:,} allowed. {fix} "
                "(KERASIMGCLS_MAX_ARCHIVE_HEADER_BYTES)."
            )
        total += _BLOCK + padded
        if total > max_total:
            raise ValueError(
                f"{name} unpacks to more than {max_total:,} bytes, headers included. "
                f"{fix} (KERASIMGCLS_MAX_ARCHIVE_BYTES)."
            )
        if kind in _EXTENDED:
            body = _read_exactly(stream, padded, name, fix)
            if kind == b"x":
                pending = _pax_size(body[:size])
            continue
        members += 1
        _check_members(members, max_members, name, fix)
        _skip(stream, padded)


def _check_members(members: int, max_members: int, name: str, fix: str) -> None:
    if members > max_members:
        raise ValueError(
            f"{name} has more than {max_members:,} members. {fix} "
            "(KERASIMGCLS_MAX_ARCHIVE_MEMBERS)."
        )


def _headers(stream: IO[bytes], name: str, fix: str) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, header)`` of each member header up to the end of archive."""
    while True:
        offset = stream.tell()
        header = stream.read(_BLOCK)
        if len(header) < _BLOCK or header == bytes(_BLOCK):
            return  # the end (tarfile reports a truncated archive itself)
        if not _checksum_ok(header):
            what = "is not a tar archive" if offset == 0 else "has a damaged header"
            raise ValueError(f"{name} {what} (at byte {offset:,}). {fix}")
        yield offset, header


def _checksum_ok(header: bytes) -> bool:
    field = header[148:156].replace(b"\0", b" ").strip()
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    signed = unsigned - 2 * sum(byte for byte in header if byte > 127)
    return stored in (unsigned, signed)


def _size(header: bytes, name: str, offset: int, fix: str) -> int:
    field = header[124:136]
    if field[0] & 0x80:  # base-256, for sizes of 8 GiB and more
        if field[0] & 0x40:
            raise ValueError(f"{name} has a negative member size at byte {offset:,}")
        return int.from_bytes(bytes([field[0] & 0x3F]) + field[1:], "big")
    text = field.replace(b"\0", b" ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError as err:
        raise ValueError(
            f"{name} has a damaged header (member size {text!r:.20}) at byte "
            f"{offset:,}. {fix}"
        ) from err


def _pax_size(body: bytes) -> int | None:
    """The ``size`` record of a PAX header body, if it has one."""
    found = None
    for record in body.split(b"\n"):
        _, _, keyword_value = record.partition(b" ")
        keyword, equals, value = keyword_value.partition(b"=")
        if equals and keyword == b"size" and value.isdigit():
            found = int(value)
    return found


def _read_exactly(stream: IO[bytes], count: int, name: str, fix: str) -> bytes:
    data = stream.read(count)
    if len(data) < count:
        raise ValueError(f"{name} is truncated. {fix}")
    return data


def _skip(stream: IO[bytes], count: int) -> None:
    """Move past ``count`` bytes, reading at most 1 MiB at a time."""
    if stream.seekable() and not isinstance(
        stream, gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile
    ):
        stream.seek(count, os.SEEK_CUR)
        return
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            return  # truncated: tarfile says so
        count -= len(chunk)
