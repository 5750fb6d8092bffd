"""No import cycles, and imports only point down the layers (issue 17; ARCHITECTURE.md, "Packages and their direction").

Every module of the package is imported, and every ``import astrokit...`` in it,
at module level or inside a function, is checked against the layer of the
package it names. ``<package>/_cli.py`` modules belong to the command line, the
top layer, with ``astrokit.cli`` and ``astrokit._cli_util``.
"""

import ast
import importlib
from pathlib import Path

import pytest

import astrokit

ROOT = Path(astrokit.__file__).parent

#: Lowest first: a package may import its own layer and the layers below.
LAYERS = [
    {"astrokit", "exceptions", "_allocator", "_argtypes", "_resources", "_threads", "_version"},
    {"io"},
    {"store"},
    {"background", "detection", "registration", "calibration", "notify"},
    {"catalog", "alerts", "labels"},
    {"differencing", "photometry"},  # they read header conventions (saturation, filters) from catalog
    {"datasets"},
    {"inference", "linking"},
    {"pipeline"},
    {"widgets"},
    {"cli"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
# imports inside astrokit.__getattr__, run on first use of the attribute only (``astrokit.explore``)
LAZY_ENTRY_POINTS = {("astrokit", "astrokit.widgets")}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _unit(module):
    """The layer unit of a module: its package, or ``cli`` for the command line."""
    parts = module.split(".")
    if len(parts) == 1:
        return "astrokit"
    if parts[-1] in ("_cli", "cli", "_cli_util"):
        return "cli"
    return parts[1]


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


MODULES = dict(_modules())


def test_every_unit_has_a_layer():
    assert {_unit(m) for m in MODULES} <= set(LAYER), {_unit(m) for m in MODULES} - set(LAYER)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_imports_point_down_the_layers():
    upward = []
    for module, path in MODULES.items():
        here = _unit(module)
        for name in _imports(path):
            if name == "astrokit" or name.startswith("astrokit."):
                there = _unit(name)
                if LAYER[there] > LAYER[here] and (module, name) not in LAZY_ENTRY_POINTS:
                    upward.append(f"{module} imports {name} ({here} is below {there})")
    assert not upward, "\n".join(upward)


def test_no_import_cycles_between_packages():
    graph = {}
    for module, path in MODULES.items():
        for name in _imports(path):
            if name.startswith("astrokit.") and _unit(name) != _unit(module):
                graph.setdefault(_unit(module), set()).add(_unit(name))

    def reaches(start, goal, seen):
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen))
                   for n in graph.get(start, ()))

    cycles = sorted(unit for unit in graph if reaches(unit, unit, set()))
    assert not cycles, f"packages on an import cycle: {cycles}"
