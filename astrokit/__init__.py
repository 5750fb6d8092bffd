"""astrokit: time-domain analysis of astronomical images, from raw FITS to labelled transients."""

from astrokit.exceptions import AstrokitError, AstrokitWarning, DataError, MissingExtraError

__all__ = ["AstrokitError", "AstrokitWarning", "DataError", "MissingExtraError", "__version__"]


def __getattr__(name):
    """Compute ``__version__`` (`astrokit._version.get_version`) or import ``explore`` on first use."""
    if name == "__version__":
        from astrokit._version import get_version

        globals()["__version__"] = version = get_version()
        return version
    if name == "explore":  # the frame explorer (issue 23), imported on first use: widgets is the top layer
        from astrokit.widgets import explore

        return explore
    msg = f"module 'astrokit' has no attribute {name!r}"
    raise AttributeError(msg)
