"""Package-level checks: cheap import, public names, numpydoc docstrings."""

import subprocess
import sys

import pytest

import astrokit.inference as inference


def test_import_does_not_load_tensorflow():
    code = "import sys, astrokit.inference; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", [n for n in inference.__all__ if callable(getattr(inference, n))
                                  and not isinstance(getattr(inference, n), dict)])
def test_public_docstrings_are_valid_numpydoc(name):
    from numpydoc.validate import validate

    # checks that protect the docstring's truth: parameters documented and existing, sections present
    wanted = {"PR01", "PR02", "PR03", "GL08", "SS01", "RT01", "YD01"}
    report = validate(f"astrokit.inference.{name}")
    errors = [(code, msg) for code, msg in report["errors"] if code in wanted]
    assert not errors, errors
