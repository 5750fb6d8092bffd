"""astrokit: time-domain analysis of astronomical images, from raw FITS to labelled transients."""

from astrokit.exceptions import AstrokitError, AstrokitWarning, DataError, MissingExtraError

__version__ = "0.1.0"

__all__ = ["AstrokitError", "AstrokitWarning", "DataError", "MissingExtraError", "__version__"]
