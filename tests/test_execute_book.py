"""scripts/execute_book.py fills jupyter-cache with the records Jupyter Book then reads."""

from __future__ import annotations

from pathlib import Path

from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
execute_book = load_script("execute_book")


def test_pages_that_time_code_run_alone_and_the_others_are_pooled(tmp_path):
    """With an empty cache every notebook page is planned once; the pages that glue
    timings (the cost, efficient and RNN chapters) run alone."""
    from jupyter_cache import get_cache

    extensions, _, _ = execute_book.book_config(ROOT)
    alone, pooled = execute_book.plan(ROOT, extensions, get_cache(str(tmp_path / "cache")))
    names = {p.relative_to(ROOT).as_posix() for p in alone}
    assert {"book/cost.md", "book/efficient.md", "book/rnn_bottleneck.md"} <= names
    assert "book/softmax.md" in {p.relative_to(ROOT).as_posix() for p in pooled}
    assert len(alone) + len(pooled) == len(set(alone + pooled))
    pages = [p for p in execute_book.toc_files(ROOT) if p.is_file()]
    notebooks = [p for p in pages if execute_book.is_notebook(execute_book.read(p, extensions))]
    assert sorted(alone + pooled) == sorted(notebooks)

