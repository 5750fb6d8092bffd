"""The base exception and warning of astrokit (after papermill's ``PapermillException``)."""

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


def require(module: str, extra: str):
    """Import ``module`` or raise `MissingExtraError` naming the pip extra that provides it.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"tensorflow"``.
    extra : str
        The astrokit extra that installs it, e.g. ``"ml"``.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingExtraError
        If the module cannot be imported.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        msg = f"{module} is required for this feature: pip install 'astrokit[{extra}]' ({exc})"
        raise MissingExtraError(msg) from exc
