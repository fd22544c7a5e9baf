"""CSV files of the course tools (gradebooks, sheets, lateness, imports): one way to write them.

Every CSV an instructor tool writes goes through ``write_csv``: atomically (a
reader sees the old file or the new one), UTF-8, by default with a byte-order
mark so that spreadsheets show Hangul names right; the tools read them back
with ``encoding="utf-8-sig"``, which accepts both.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Sequence


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, bom: bool = True) -> None:
    """Writes ``header`` and ``rows`` to ``path`` atomically (``bom``: UTF-8 with a byte-order mark)."""
    from instructor.release.archive import write_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(Path(path), buffer.getvalue().encode("utf-8-sig" if bom else "utf-8"))
