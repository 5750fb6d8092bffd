"""Numpydoc checks of the whole public API (STYLE.md): every public name documented, parameters true.

The differencing and registration subpackages are checked with every numpydoc rule in
tests/differencing/test_docstrings.py; here every other subpackage is held to the rules
that keep docstrings true: a docstring exists, every parameter is documented, no
documented parameter is stale (papermill's lesson).
"""

import importlib
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

MODULES = ["astrokit.io", "astrokit.catalog", "astrokit.background", "astrokit.detection", "astrokit.photometry",
           "astrokit.alerts", "astrokit.store", "astrokit.pipeline", "astrokit.datasets", "astrokit.inference",
           "astrokit.widgets", "astrokit.exceptions", "astrokit.notify",
           "astrokit.labels", "astrokit.linking", "astrokit.catalog._search"]
RULES = {"GL08": "no docstring", "PR01": "parameter not documented", "PR02": "documented parameter does not exist"}


def _public():
    for modname in MODULES:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{modname}.{name}"


@pytest.mark.parametrize("qualname", list(_public()))
def test_docstring(qualname):
    result = numpydoc_validate.validate(qualname)
    obj = result.get("docstring")
    errors = [(code, msg) for code, msg in result["errors"] if code in RULES]
    if inspect.isclass(_resolve(qualname)) and not obj:
        errors.append(("GL08", "class without docstring"))
    assert not errors, errors


def _resolve(qualname):
    modname, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(modname), name)
