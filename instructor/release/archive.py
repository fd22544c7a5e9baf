"""Byte-reproducible zip files (and .npz files, which are zips of .npy arrays).

The same files always give the same bytes: entries sorted by name, a fixed
timestamp (1980-01-01, the earliest a zip can store), fixed permissions
(0644, or 0755 for executables), Unix as the creating system, one compression
level, and no directory entries.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping

import numpy as np

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
COMPRESS_LEVEL = 9


def zip_bytes(files: Mapping[str, bytes], executables: frozenset[str] | set[str] = frozenset(),
              prefix: str = "") -> bytes:
    """A zip of ``files`` (path -> content), each stored under ``prefix + path``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(prefix + path, date_time=FIXED_DATE)
            info.create_system = 3  # Unix, so the permission bits below are honoured
            mode = EXECUTABLE_MODE if path in executables else FILE_MODE
            info.external_attr = (0o100000 | mode) << 16  # regular file
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[path], compresslevel=COMPRESS_LEVEL)
    return buffer.getvalue()


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of an ``.npz`` that ``np.load`` reads back as ``arrays``, reproducibly."""
    members = {}
    for name, array in arrays.items():
        out = io.BytesIO()
        np.lib.format.write_array(out, np.asanyarray(array), allow_pickle=False)
        members[f"{name}.npy"] = out.getvalue()
    return zip_bytes(members)


def write_atomic(path: str | os.PathLike, content: bytes) -> None:
    """Writes ``content`` to ``path`` via a temporary file and a rename."""
    from load_data import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_bytes(content)
