"""Numpydoc validation of the public differencing, registration and calibration API (STYLE.md)."""

# ruff: noqa: D103  (test names say what they check)

import dataclasses

import pytest

import astrokit.calibration as calibration
import astrokit.differencing as differencing
import astrokit.registration as registration

numpydoc_validate = pytest.importorskip("numpydoc.validate")

# not required: See Also, Examples, Extended Summary, and for dataclasses/named tuples the
# fields are documented under "Attributes" rather than "Parameters"
IGNORED = {"SA01", "EX01", "ES01", "GL08"}

PUBLIC = [(differencing, n) for n in differencing.__all__
          if not isinstance(getattr(differencing, n), (dict, tuple, int, float))]
PUBLIC += [(registration, n) for n in registration.__all__]
PUBLIC += [(calibration, n) for n in calibration.__all__]


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[f"{m.__name__}.{n}" for m, n in PUBLIC])
def test_numpydoc(module, name):
    """Every public function and class has a valid numpydoc docstring."""
    obj = getattr(module, name)
    result = numpydoc_validate.validate(f"{module.__name__}.{name}")
    ignored = set(IGNORED)
    if dataclasses.is_dataclass(obj) or (isinstance(obj, type) and issubclass(obj, tuple)):
        ignored.add("PR01")
    errors = [(code, msg) for code, msg in result["errors"] if code not in ignored]
    assert not errors, errors
