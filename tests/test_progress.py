"""course_lib.progress: a bar live, one summary line on stdout while the book is built."""

from __future__ import annotations

import re

from course_lib.progress import progress


def test_book_build_prints_one_summary_line_on_stdout(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_BOOK_BUILD", "1")
    assert list(progress(range(5), desc="train", unit="step")) == [0, 1, 2, 3, 4]
    out, err = capsys.readouterr()
    assert err == ""
    assert re.fullmatch(r"train: 5 steps in \d+\.\d s\n", out)


def test_live_mode_yields_every_item(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_BOOK_BUILD", raising=False)
    assert list(progress(iter("abc"), desc="x", total=3)) == ["a", "b", "c"]
    assert "3/3" in capsys.readouterr().err  # tqdm draws its bar on stderr
