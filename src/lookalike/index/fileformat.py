"""The file an index is saved in: one self-describing file each::

    MAGIC (16 bytes) | header length (8 bytes, little-endian) | header (UTF-8 JSON) | payload

The header records the backend name, the dimension, the parameters, the number of
vectors and, for each payload section, its name, dtype, shape and byte count; the
SHA-256 of the payload catches truncation and bit rot. Writing is atomic (a temporary
file, fsync, rename, fsync of the folder); reading checks everything and names the file
in every error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import LookalikeError, ManifestMismatchError, expect

MAGIC = b"LOOKALIKE-INDEX\n"
FORMAT_VERSION = 1
_HEADER_LEN = struct.Struct("<Q")
_MAX_HEADER_BYTES = 1 << 20
# Dtypes a payload section may have, as numpy little-endian dtype strings.
_SECTION_DTYPES = frozenset({"<f4", "<i8", "|u1", "|b1"})
_REQUIRED = (("backend", str), ("dim", int), ("params", dict), ("count", int),
             ("sections", list), ("sha256", str))


def write_index_file(target: Path, fields: Mapping[str, Any],
                     state: Mapping[str, npt.NDArray[Any]]) -> None:
    """Write ``fields`` (backend, dim, params, count) and the ``state`` sections to
    ``target`` atomically: a reader sees the old file or the new one."""
    sections = {name: _little_endian(arr) for name, arr in state.items()}
    digest = hashlib.sha256()
    for arr in sections.values():
        digest.update(_bytes_of(arr))
    header = {"format": "lookalike-index", "version": FORMAT_VERSION, **fields,
              "sections": [{"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape),
                            "nbytes": int(arr.nbytes)} for name, arr in sections.items()],
              "sha256": digest.hexdigest()}
    header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC)
            fh.write(_HEADER_LEN.pack(len(header_bytes)))
            fh.write(header_bytes)
            for arr in sections.values():
                fh.write(_bytes_of(arr))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


def read_index_file(source: Path) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The header and the sections of a saved index; every error names ``source``."""
    try:
        blob = source.read_bytes()
    except OSError as exc:
        raise LookalikeError(f"{source}: cannot read index file: {exc}") from exc
    header, payload = _header_and_payload(source, blob)
    return header, _sections(source, header, payload)


def _little_endian(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    arr = np.ascontiguousarray(arr, dtype=dtype)
    expect(arr.dtype.str in _SECTION_DTYPES, f"unsupported section dtype {arr.dtype}")
    return arr


def _corrupt(source: Path, reason: str) -> LookalikeError:
    return LookalikeError(f"{source}: not a valid Lookalike index file: {reason}")


def _header_and_payload(source: Path, blob: bytes) -> tuple[dict[str, Any], memoryview]:
    prefix = len(MAGIC) + _HEADER_LEN.size
    if len(blob) < prefix or not blob.startswith(MAGIC):
        raise _corrupt(source, "missing the file signature (wrong file, or truncated)")
    (header_len,) = _HEADER_LEN.unpack_from(blob, len(MAGIC))
    if header_len > _MAX_HEADER_BYTES or prefix + header_len > len(blob):
        raise _corrupt(source, f"header length {header_len} does not fit the file "
                               f"({len(blob)} bytes)")
    try:
        header = json.loads(blob[prefix : prefix + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(source, f"unreadable header ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != "lookalike-index":
        raise _corrupt(source, "the header is not a Lookalike index header")
    if header.get("version") != FORMAT_VERSION:
        raise ManifestMismatchError(
            f"{source}: index file format version {header.get('version')!r}, "
            f"this Lookalike reads version {FORMAT_VERSION}")
    if not all(isinstance(header.get(key), kind) for key, kind in _REQUIRED) or not (
            header["dim"] > 0 and header["count"] >= 0):
        raise _corrupt(source, "the header lacks fields or has fields of the wrong type")
    payload = memoryview(blob)[prefix + header_len :]
    if hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise _corrupt(source, "checksum mismatch: the file is truncated or damaged")
    return header, payload


def _sections(source: Path, header: dict[str, Any], payload: memoryview
              ) -> dict[str, npt.NDArray[Any]]:
    sections: dict[str, npt.NDArray[Any]] = {}
    offset = 0
    for entry in header["sections"]:
        try:
            name, dtype_str, shape = entry["name"], entry["dtype"], tuple(entry["shape"])
            nbytes = entry["nbytes"]
        except (TypeError, KeyError) as exc:
            raise _corrupt(source, f"malformed section entry {entry!r}") from exc
        if dtype_str not in _SECTION_DTYPES or not all(
                isinstance(s, int) and s >= 0 for s in shape):
            raise _corrupt(source, f"malformed section entry {entry!r}")
        dtype = np.dtype(dtype_str)
        if math.prod(shape) * dtype.itemsize != nbytes or offset + nbytes > len(payload):
            raise _corrupt(source, f"section {name!r} does not fit the file")
        sections[name] = np.frombuffer(payload, dtype=dtype, count=math.prod(shape),
                                       offset=offset).reshape(shape)
        offset += nbytes
    if offset != len(payload):
        raise _corrupt(source, f"{len(payload) - offset} unexpected bytes after the last section")
    return sections


def _bytes_of(arr: npt.NDArray[Any]) -> memoryview:
    """The raw bytes of a C-contiguous array, without a copy."""
    return arr.reshape(-1).view(np.uint8).data


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
