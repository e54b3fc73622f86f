"""course_lib.configs: the real models' shapes are self-consistent and cite a source."""

from __future__ import annotations

import re

import pytest

from course_lib.configs import MODELS


@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_are_consistent_and_sourced(name):
    c = MODELS[name]
    assert c.heads * c.head_dim == c.d_model, "query heads x head dim must equal the width"
    assert c.heads % c.kv_heads == 0, "key/value heads must divide the query heads (GQA)"
    assert c.window is None or 0 < c.window <= c.context
    assert re.search(r"arXiv:\d{4}\.\d{4,5}", c.source), "every entry cites its paper"
    assert "source" not in c.as_dict() and c.as_dict()["layers"] == c.layers
