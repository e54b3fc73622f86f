"""Progress bars for long cells (training loops, sweeps) that read well everywhere.

* In a live notebook: tqdm's notebook bar (tqdm.auto).
* While the book is built (``COURSE_BOOK_BUILD=1``, set by the book's Sphinx extension):
  one final summary line on stdout, so the page shows how long the work took and no
  stderr output (which the book build would turn into a warning) is produced.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, **kwargs) -> tqdm:
    """Wrap ``iterable`` in a progress bar (see the module docstring for where it shows)."""
    if os.environ.get("COURSE_BOOK_BUILD"):
        from tqdm.std import tqdm as plain_tqdm

        return plain_tqdm(
            iterable,
            desc=desc,
            total=total,
            file=sys.stdout,
            mininterval=math.inf,
            ascii=True,
            **kwargs,
        )
    return tqdm(iterable, desc=desc, total=total, **kwargs)
