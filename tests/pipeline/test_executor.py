"""The executor's contract in this process (no Dask): failures of one unit come back, others propagate."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from astrokit.exceptions import DataError
from astrokit.pipeline import StageReport, map_units
from astrokit.pipeline._runner import _read_report


def _square(unit, *, offset):
    if unit == 3:
        msg = f"unit {unit}: unreadable"
        raise DataError(msg)
    if unit == 99:
        msg = "a bug, not a bad unit"
        raise TypeError(msg)
    return unit * unit + offset


def test_in_process_failures_are_yielded_and_the_rest_done():
    out = list(map_units(_square, [1, 2, 3, 4], errors=(DataError,), progress=False, offset=1))
    assert [(u, r) for u, r, e in out if e is None] == [(1, 2), (2, 5), (4, 17)]
    (unit, result, error), = [o for o in out if o[2] is not None]
    assert unit == 3 and result is None and isinstance(error, DataError)


def test_an_unexpected_exception_propagates():
    with pytest.raises(TypeError, match="a bug"):
        list(map_units(_square, [1, 99], errors=(DataError,), progress=False, offset=0))


def test_the_runner_reads_the_report_a_notebook_displayed(tmp_path):
    report = StageReport("photometry")
    report.update(processed=2, skipped=5, failed=1, failures=[{"unit": "a.fits", "reason": "truncated"}])
    bundle = report._repr_mimebundle_()
    assert bundle["text/plain"] == "<photometry: 2 processed, 5 skipped, 0 rows, 1 failed>"
    nb = new_notebook(cells=[new_code_cell("report", outputs=[new_output("execute_result", data=bundle,
                                                                           execution_count=1)])])
    path = tmp_path / "photometry.ipynb"
    nbformat.write(nb, path)
    assert _read_report(path) == dict(report)
    assert _read_report(tmp_path / "missing.ipynb") is None
