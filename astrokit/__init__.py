"""astrokit: time-domain analysis of astronomical images, from raw FITS to labelled transients."""

from astrokit.exceptions import AstrokitError, AstrokitWarning, DataError, MissingExtraError

__all__ = ["AstrokitError", "AstrokitWarning", "DataError", "MissingExtraError", "__version__"]


def __getattr__(name):
    """Compute ``__version__`` on first use (`astrokit._version.get_version`: metadata, or git in a clone)."""
    if name == "__version__":
        from astrokit._version import get_version

        globals()["__version__"] = version = get_version()
        return version
    msg = f"module 'astrokit' has no attribute {name!r}"
    raise AttributeError(msg)
