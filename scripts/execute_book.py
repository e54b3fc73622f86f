"""Execute the book's chapters into jupyter-cache two at a time, before `jupyter-book build`.

Jupyter Book 1 executes a book's notebooks one after another. This script fills the same
cache (`execute.cache` in _config.yml) with the same records myst-nb would make, so that
the build that follows only reads them:

* chapters that time code (a code cell calls one of ``TIMERS``, and the page glues what
  it measures) run first, one at a time, with nothing else running;
* the others then run in a pool of ``--jobs`` processes (default: the number of CPUs),
  each kernel with one intra-op thread so that the pool does not oversubscribe the CPUs.

A chapter already in the cache (same code cells) is skipped. A chapter that fails here is
only reported: the build then executes it itself and fails with its usual message.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution
from myst_nb.core.read import read_myst_markdown_notebook
from myst_parser.config.main import MdParserConfig

ROOT = Path(__file__).resolve().parents[1]
MYST_READER = {"type": "plugin", "name": "myst_nb_md"}
# A page that calls one of these measures time: it runs alone.
TIMERS = ("perf_counter", "process_time", "timeit", "median_times", "bench_forward")


def toc_files(root: Path) -> list[Path]:
    """Every page of _toc.yml, in order, as a path to its .md file."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return [root / f"{f}.md" for f in files]


def book_config(root: Path):
    """(MyST extensions, cell timeout in seconds, the jupyter-cache) from _config.yml."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    extensions = config.get("parse", {}).get("myst_enable_extensions", [])
    timeout = int(config.get("execute", {}).get("timeout", 300))
    return extensions, timeout, get_cache(str(root / config["execute"]["cache"]))


def read(path: Path, extensions: list[str]):
    config = MdParserConfig(enable_extensions=set(extensions))
    return read_myst_markdown_notebook(path.read_text(), config=config, path=path)


def is_notebook(nb) -> bool:
    return "kernelspec" in nb.metadata and any(c.cell_type == "code" for c in nb.cells)


def measures_time(nb) -> bool:
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return any(timer in code for timer in TIMERS)


def plan(root: Path, extensions: list[str], cache) -> tuple[list[Path], list[Path]]:
    """The pages to execute: (those that time code, the others longest first); cached
    pages are left out."""
    alone, pooled = [], []
    for path in toc_files(root):
        nb = read(path, extensions)
        if not is_notebook(nb):
            continue
        try:
            cache.match_cache_notebook(nb)
            continue  # cached: nothing to run
        except KeyError:
            pass
        (alone if measures_time(nb) else pooled).append(path)
    # Longest first, roughly: the pages with the most text.
    pooled.sort(key=lambda p: -len(p.read_text()))
    return alone, pooled


def execute(path: str, extensions: list[str], timeout: int, threads: int | None):
    """Run in a worker process: execute one chapter in its own folder, return it."""
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)
    nb = read(Path(path), extensions)
    result = single_nb_execution(
        nb, cwd=str(Path(path).parent), allow_errors=False, timeout=timeout, meta_override=True
    )
    error = None if result.err is None else f"{type(result.err).__name__}: {result.err}"
    return path, nb, result.time, error


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    # What book/_ext/course_book.py sets for the kernels of a build: plotly figures as HTML,
    # explorer ids that depend only on content, progress bars that print a summary.
    os.environ["COURSE_BOOK_BUILD"] = "1"
    extensions, timeout, cache = book_config(ROOT)

    alone, pooled = plan(ROOT, extensions, cache)
    if not alone and not pooled:
        print("execute_book: every chapter is cached")
        return 0

    failed = []

    def record(path: str, nb, seconds: float, error: str | None) -> None:
        name = Path(path).relative_to(ROOT)
        if error:
            failed.append(name)
            print(f"execute_book: {name} FAILED ({error.splitlines()[0][:200]})", flush=True)
            return
        # The project record myst-nb itself makes for a MyST markdown page.
        uri = cache.add_nb_to_project(path, read_data=MYST_READER).uri
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, uri, data={"execution_seconds": seconds}),
            check_validity=False,
            overwrite=True,
        )
        print(f"execute_book: {name} executed in {seconds:.1f} s", flush=True)

    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1) as one:
        for path in alone:
            record(*one.submit(execute, str(path), extensions, timeout, None).result())
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(execute, str(p), extensions, timeout, 1) for p in pooled]
        for future in as_completed(futures):
            record(*future.result())
    print(
        f"execute_book: {len(alone)} timed chapters alone, {len(pooled)} pages in "
        f"{args.jobs} processes, {time.perf_counter() - start:.0f} s wall"
        + (f"; failed (the build will retry and report them): {failed}" if failed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
