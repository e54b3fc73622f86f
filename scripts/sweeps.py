"""What the cached-experiment scripts (rnn_sweep.py, induction_sweep.py) share."""

from __future__ import annotations

import json
from pathlib import Path


def rounded(x, digits: int = 4):
    """``x`` with every float rounded (a smaller file and readable diffs)."""
    if isinstance(x, float):
        return round(x, digits)
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    if isinstance(x, dict):
        return {key: rounded(v, digits) for key, v in x.items()}
    return x


def write_sweep(result: dict, out: Path) -> None:
    """Write ``{"config", "torch", "runs"}`` with one run per line, so that the diff of a
    rerun is readable."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        f.write('{"config": ' + json.dumps(result["config"]) + ',\n"torch": ')
        f.write(json.dumps(result["torch"]) + ',\n"runs": [\n')
        f.write(",\n".join(json.dumps(r) for r in result["runs"]) + "\n]}\n")
