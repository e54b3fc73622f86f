"""Progress bars for long cells (training loops, sweeps) that read well everywhere.

* In a live notebook or a terminal: a tqdm bar (``tqdm.auto``).
* While the book is built (``COURSE_BOOK_BUILD=1``, set by the book's Sphinx extension):
  no bar, but one summary line on stdout when the loop ends (``train: 400/400 steps in
  12.3 s``), so the page says how long the work took and nothing is written to stderr
  (which the book build would turn into a warning).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(
    iterable: Iterable[T], desc: str = "", total: int | None = None, unit: str = "it", **kwargs
) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar (see the module docstring for where it shows)."""
    if os.environ.get("COURSE_BOOK_BUILD"):
        return _summary(iterable, desc, unit)
    return iter(tqdm(iterable, desc=desc, total=total, unit=unit, **kwargs))


def _summary(iterable: Iterable[T], desc: str, unit: str) -> Iterator[T]:
    start, count = time.perf_counter(), 0
    for count, item in enumerate(iterable, start=1):  # noqa: B007 (count is read after)
        yield item
    label = f"{desc}: " if desc else ""
    print(
        f"{label}{count} {unit}{'s' if count != 1 else ''} in {time.perf_counter() - start:.1f} s"
    )
