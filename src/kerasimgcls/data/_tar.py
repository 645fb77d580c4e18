"""Extract the CIFAR archives once, within bounds: sizes, names, paths, links."""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any

from kerasimgcls._io import (
    file_lock,
    no_space_error,
    open_regular_file,
    write_json_atomic,
)
from kerasimgcls._validation import (
    limit,
)
from kerasimgcls.data._sources import _CIFAR10, _Source
from kerasimgcls.data._tar_headers import check_tar_headers

__all__ = ["batches_folder"]

logger = logging.getLogger(__name__)


def batches_folder(location: Path, source: _Source) -> Path:
    """Return the folder holding the extracted batches, extracting an archive once."""
    if location.is_dir():
        for candidate in (location, location / source.folder):
            if (
                candidate / ("batches.meta" if source is _CIFAR10 else "meta")
            ).exists():
                return candidate
        for name in (source.archive, f"{source.folder}-target_archive"):
            if (location / name).is_file():
                return batches_folder(location / name, source)
        raise FileNotFoundError(
            f"data_dir {str(location)!r} holds neither {source.archive}, its "
            f"extracted folder {source.folder}/, nor a train/<class>/ image folder"
        )
    return _extract_once(location, source)


# Written into an extraction folder last: the folder is complete and came from
# the archive of this size and modification time. A folder without it (an
# interrupted or older extraction) or with another archive's is extracted again.
_EXTRACTED_MARKER = ".kerasimgcls-extracted.json"


def _extract_once(archive: Path, source: _Source) -> Path:
    """Extract ``archive`` beside itself (or in the user cache) unless already done.

    The extraction is verified (bounded, complete, marker last) and replaced when
    the archive changes; concurrent loaders take turns on a lock file, so the
    second one finds the first one's extraction.
    """
    from kerasimgcls.data._image_folder import default_cache_dir

    stem = archive.name.split(".")[0]
    identity = _archive_identity(archive)
    targets = [
        archive.parent / f"{stem}_extracted",
        default_cache_dir() / f"{stem}_extracted",
    ]
    for target in targets:
        if _is_current(target, identity, source):
            return target / source.folder
    for target in targets:
        with contextlib.ExitStack() as stack:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                lock = target.parent / f".{stem}.extract.lock"
                stack.enter_context(file_lock(lock, blocking=True))
            except OSError:
                continue
            if not _is_current(target, identity, source):
                _extract_into(archive, target, identity, source)
        logger.info("extracted %s to %s", archive, target)
        return target / source.folder
    raise PermissionError(
        f"cannot extract {str(archive)!r}: neither its folder nor the cache folder "
        f"{str(default_cache_dir())!r} is writable; extract it yourself and pass the "
        "extracted folder as data_dir"
    )


def _archive_identity(archive: Path) -> dict[str, Any]:
    info = archive.stat()
    return {
        "archive": archive.name,
        "size": int(info.st_size),
        "mtime_ns": int(info.st_mtime_ns),
    }


def _is_current(target: Path, identity: dict[str, Any], source: _Source) -> bool:
    try:
        marker = json.loads((target / _EXTRACTED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker == identity and (target / source.folder).is_dir()


def _extract_into(
    archive: Path, target: Path, identity: dict[str, Any], source: _Source
) -> None:
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    )
    try:
        _extract_checked(archive, staging, source)
        if not (staging / source.folder).is_dir():
            raise ValueError(
                f"{str(archive)!r} does not contain the folder {source.folder}/; "
                f"is it the official {source.archive}?"
            )
        write_json_atomic(staging / _EXTRACTED_MARKER, identity)
        if target.exists():
            _remove_stale_extraction(target, source)
        os.replace(staging, target)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space_error(err, target) from err
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_extraction(target: Path, source: _Source) -> None:
    """Delete an earlier extraction, but only one that is recognisably ours."""
    entries = {entry.name for entry in target.iterdir()}
    if (
        not target.is_dir()
        or target.is_symlink()
        or not entries
        <= {
            source.folder,
            _EXTRACTED_MARKER,
        }
    ):
        raise ValueError(
            f"{str(target)!r} holds an outdated or incomplete extraction together "
            f"with other files ({sorted(entries)[:5]}); remove it, or move the "
            "other files out, and load again"
        )
    logger.info("replacing the outdated extraction %s", target)
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.replace(target, trash / "stale")
    shutil.rmtree(trash, ignore_errors=True)


def _extract_checked(archive: Path, staging: Path, source: _Source) -> None:
    """Extract the members of ``archive`` under ``source.folder``, within the bounds."""
    max_members = limit("max_archive_members")
    max_total = limit("max_archive_bytes")
    max_member = limit("max_archive_member_bytes")
    try:
        fd, _ = open_regular_file(archive, max_bytes=max_total, what="archive")
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ValueError(f"cannot read {str(archive)!r}: {err.strerror}") from err
    fix = (
        f"Is it the official {source.archive}? Download it again, or raise the "
        "bound with the environment variable named"
    )
    try:
        check_tar_headers(archive, fix.split("?")[0] + "? Download it again")
    except BaseException:
        os.close(fd)
        raise
    try:
        with os.fdopen(fd, "rb") as raw, tarfile.open(fileobj=raw) as handle:
            members = []
            total = 0
            for count, member in enumerate(handle, start=1):
                if count > max_members:
                    raise ValueError(
                        f"{str(archive)!r} has more than {max_members:,} members. "
                        f"{fix} (KERASIMGCLS_MAX_ARCHIVE_MEMBERS)."
                    )
                if member.size > max_member:
                    raise ValueError(
                        f"{str(archive)!r}: member {member.name!r} unpacks to "
                        f"{member.size:,} bytes, more than the {max_member:,} "
                        f"allowed. {fix} (KERASIMGCLS_MAX_ARCHIVE_MEMBER_BYTES)."
                    )
                total += member.size
                if total > max_total:
                    raise ValueError(
                        f"{str(archive)!r} unpacks to more than {max_total:,} bytes. "
                        f"{fix} (KERASIMGCLS_MAX_ARCHIVE_BYTES)."
                    )
                _check_member_name(member, archive, fix)
                parts = Path(member.name).parts
                if member.name.startswith(("/", "\\")) or ".." in parts:
                    raise ValueError(
                        f"cannot extract {str(archive)!r}: member {member.name!r} "
                        "would be written outside the extraction folder (a crafted "
                        "archive?)"
                    )
                inside = parts[:1] == (source.folder,)
                if inside and (member.isfile() or member.isdir()):
                    members.append(member)
            # The "data" filter refuses absolute paths, "..", links leaving the
            # folder and device files: a crafted archive cannot write elsewhere.
            handle.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(
            f"cannot extract {str(archive)!r} (truncated or not a tar archive): "
            f"{err or type(err).__name__}. {fix.split('?')[0]}? Download it again."
        ) from err


# The longest name of one folder or file on common file systems (NAME_MAX).
_NAME_MAX = 255


def _check_member_name(member: tarfile.TarInfo, archive: Path, fix: str) -> None:
    """Refuse a member name too deep, or with a part too long, to extract."""
    parts = member.name.split("/")
    depth = limit("max_archive_path_depth")
    if len(parts) > depth:
        raise ValueError(
            f"{str(archive)!r}: member {member.name[:60]!r}... is {len(parts):,} "
            f"folders deep, more than the {depth} allowed. {fix} "
            "(KERASIMGCLS_MAX_ARCHIVE_PATH_DEPTH)."
        )
    for part in (*parts, *member.linkname.split("/")):
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > _NAME_MAX:
            raise ValueError(
                f"{str(archive)!r}: member {member.name[:60]!r}... has a name part "
                f"of {size:,} bytes, more than the {_NAME_MAX} a file system allows; "
                f"is it the official archive? Download it again."
            )
