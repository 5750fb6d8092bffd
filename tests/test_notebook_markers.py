"""Every nbval comment marker in the reference notebooks is one nbval recognises.

nbval matches a marker comment only when the whole comment is the marker
(``# NBVAL_IGNORE_OUTPUT``); anything after it on the same line silently turns
the marker off and the cell's output is compared after all.
"""
import json
from pathlib import Path

import pytest
from nbval.plugin import comment_markers

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_exact(path):
    cells = json.loads(path.read_text())["cells"]
    bad = []
    for index, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
        for line in "".join(cell["source"]).splitlines():
            comment = line.strip().lstrip("#").strip()
            if line.strip().startswith("#") and comment.startswith("NBVAL") and comment not in comment_markers:
                bad.append(f"cell {index}: {line.strip()!r}")
    assert not bad, f"{path.name}: nbval ignores these markers: {bad}"
