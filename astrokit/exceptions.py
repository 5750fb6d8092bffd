"""The base exception and warning of astrokit (after papermill's ``PapermillException``)."""

import os
import sys

__all__ = ["AstrokitError", "AstrokitWarning", "DataError", "MissingExtraError", "ParameterError"]


class AstrokitError(Exception):
    """Base class of every error raised by astrokit."""


class AstrokitWarning(UserWarning):
    """Base class of every warning issued by astrokit."""


class DataError(AstrokitError, ValueError):
    """An input file or array cannot be used; the message names the file and the reason."""


class ParameterError(AstrokitError, ValueError):
    """A parameter is unknown or outside its declared range; nothing was done (the command line exits with 2)."""


class MissingExtraError(AstrokitError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


#: Lines TensorFlow's C++ libraries write to stderr on import whatever TF_CPP_MIN_LOG_LEVEL says (absl logs
#: before its initialisation), dropped by `_import_without_banners`.
_TF_BANNERS = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
               "This TensorFlow binary is optimized", "Unable to register cu", "Could not find cuda drivers",
               "TF-TRT Warning", "rebuild TensorFlow with the appropriate compiler flags")


def _import_without_banners(module):
    """Import ``module`` with stderr (file descriptor 2) captured, and write back what is not a TensorFlow banner."""
    import importlib
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return importlib.import_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not any(b in line for b in _TF_BANNERS)))


def require(module: str, extra: str, *, load: bool = True):
    """Import ``module`` or raise `MissingExtraError` naming the pip extra that provides it.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"tensorflow"``.
    extra : str
        The astrokit extra that installs it, e.g. ``"ml"``.
    load : bool
        False only checks that the module is installed (`importlib.util.find_spec`),
        without importing it: for a module that another process will run (Voila's
        server takes seconds to import).

    Returns
    -------
    module or None
        The imported module (None when ``load`` is False).

    Raises
    ------
    MissingExtraError
        If the module cannot be imported (with ``load=False``: cannot be found).
    """
    import importlib

    if not load:
        import importlib.util

        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            msg = f"{module} is required for this feature: pip install 'astrokit[{extra}]' (not installed)"
            raise MissingExtraError(msg)
        return None
    try:
        if module.partition(".")[0] in ("tensorflow", "keras") and "tensorflow" not in sys.modules:
            return _import_without_banners(module)
        return importlib.import_module(module)
    except ImportError as exc:
        msg = f"{module} is required for this feature: pip install 'astrokit[{extra}]' ({exc})"
        raise MissingExtraError(msg) from exc
