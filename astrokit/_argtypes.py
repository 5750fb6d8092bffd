"""argparse value types shared by the subcommands: numbers in range, positions, negative values as values.

Each type raises `argparse.ArgumentTypeError` with a one-line message naming what
was expected, so a wrong option is refused by the parser (exit 2) before any file
is read.
"""

import argparse
import math
import re

__all__ = ["finite_float", "positive_float", "nonnegative_float", "fraction", "positive_int", "pixel_pair", "sky_pair",
           "ra_angle", "dec_angle", "sky_position", "attach_negative_values", "value_options"]


def finite_float(text):
    """Parse a finite float (no nan or inf).

    Parameters
    ----------
    text : str
        Command-line value.

    Returns
    -------
    float

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a finite number.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        msg = f"expected a finite number, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _at_least(text, low, *, strict):
    value = finite_float(text)
    if value < low or (strict and value == low):
        msg = f"expected a number {'>' if strict else '>='} {low:g}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def fraction(text):
    """Parse a fraction: a finite float in the closed interval [0, 1].

    Parameters
    ----------
    text : str
        Command-line value, e.g. ``"0.5"``.

    Returns
    -------
    float
        The fraction.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a number, or lies outside [0, 1].
    """
    value = _at_least(text, 0.0, strict=False)
    if value > 1.0:
        msg = f"expected a fraction between 0 and 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_float(text):
    """Parse a finite float > 0.

    Parameters
    ----------
    text : str
        Command-line value.

    Returns
    -------
    float

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a finite number greater than 0.
    """
    return _at_least(text, 0.0, strict=True)


def nonnegative_float(text):
    """Parse a finite float >= 0.

    Parameters
    ----------
    text : str
        Command-line value.

    Returns
    -------
    float

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a finite number of at least 0.
    """
    return _at_least(text, 0.0, strict=False)


def positive_int(text):
    """Parse an integer >= 1.

    Parameters
    ----------
    text : str
        Command-line value.

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a whole number of at least 1.
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a whole number >= 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def pixel_pair(text):
    """Parse ``X,Y`` (0-based pixels; negative values allowed: positions on the edge are measured and flagged).

    Parameters
    ----------
    text : str
        Command-line value, e.g. ``120.5,88``.

    Returns
    -------
    tuple of float
        ``(x, y)`` in pixels.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not two finite numbers separated by a comma.
    """
    parts = str(text).split(",")
    try:
        x, y = (finite_float(p) for p in parts) if len(parts) == 2 else (None, None)
    except argparse.ArgumentTypeError:
        x = y = None
    if x is None:
        msg = f"{text!r}: expected X,Y in 0-based pixels, e.g. 120.5,88"
        raise argparse.ArgumentTypeError(msg)
    return x, y


def sky_pair(text):
    """Parse ``RA,DEC`` in degrees, with RA in [0, 360) and Dec in [-90, 90].

    Parameters
    ----------
    text : str
        Command-line value, e.g. ``188.5,12.57``.

    Returns
    -------
    tuple of float
        ``(ra, dec)`` in degrees.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not two numbers, or either is out of range.
    """
    try:
        ra, dec = pixel_pair(text)
    except argparse.ArgumentTypeError:
        msg = f"{text!r}: expected RA,DEC in degrees, e.g. 188.5,12.57"
        raise argparse.ArgumentTypeError(msg) from None
    if not (0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0):
        msg = f"{text!r}: RA must be in [0, 360) and Dec in [-90, 90] degrees"
        raise argparse.ArgumentTypeError(msg)
    return ra, dec


_NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d)[\d.eE+,:\-dhms°'\" ]*$")  # numbers, pairs, -12d23m28s, -12:23:28

_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _angle_deg(text, sexagesimal_unit):
    """Degrees of an angle string: a plain number is degrees, units are honoured, bare sexagesimal is in the unit."""
    from astropy import units as u
    from astropy.coordinates import Angle

    text = str(text).strip()
    if _PLAIN_NUMBER.match(text):
        return float(text)
    unit = None if re.search(r"[hdms°]", text) else sexagesimal_unit
    return float(Angle(text, unit=unit).to_value(u.deg))


def ra_angle(text):
    """Parse a right ascension: degrees (``188.7``) or anything `astropy.coordinates.Angle` reads.

    Bare sexagesimal values are hours (``12:30:49.4``, ``12 30 49.4``), as
    astronomers write right ascension; ``12h30m49.4s``, ``12h30m`` and
    ``188d42m`` carry their own units.

    Parameters
    ----------
    text : str
        Command-line value.

    Returns
    -------
    float
        Right ascension in degrees, in [0, 360).

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not an angle, or is outside [0, 360) degrees.
    """
    try:
        value = _angle_deg(text, "hourangle")
    except (ValueError, TypeError):
        value = math.nan
    if not 0.0 <= value < 360.0:
        msg = (f"{text!r}: expected a right ascension in degrees (188.7) or hours (12h30m49.4s, 12:30:49.4) "
               "within [0, 360) deg")
        raise argparse.ArgumentTypeError(msg)
    return value


def dec_angle(text):
    """Parse a declination: degrees (``12.39``) or anything `astropy.coordinates.Angle` reads (``+12d23m28s``).

    Bare sexagesimal values are degrees (``+12:23:28``, ``-5 30 00``).

    Parameters
    ----------
    text : str
        Command-line value.

    Returns
    -------
    float
        Declination in degrees, in [-90, 90].

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not an angle, or is outside [-90, 90] degrees.
    """
    try:
        value = _angle_deg(text, "deg")
    except (ValueError, TypeError):
        value = math.nan
    if not -90.0 <= value <= 90.0:
        msg = f"{text!r}: expected a declination in degrees (12.39, +12d23m28s, +12:23:28) within [-90, 90]"
        raise argparse.ArgumentTypeError(msg)
    return value


def sky_position(text):
    """Parse a sky position as `astropy.coordinates.SkyCoord` reads a string (ICRS).

    ``"12h30m49.4s +12d23m28s"``, ``"12:30:49.4 +12:23:28"`` (bare sexagesimal:
    hours and degrees), ``"187.7058 12.3911"`` or ``187.7058,12.3911`` (degrees).

    Parameters
    ----------
    text : str
        Command-line value.

    Returns
    -------
    tuple of float
        ``(ra, dec)`` in degrees.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a position SkyCoord can read.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    parts = [p for p in re.split(r"[\s,]+", str(text).strip()) if p]
    try:
        if len(parts) == 2 and all(_PLAIN_NUMBER.match(p) for p in parts):
            coord = SkyCoord(float(parts[0]) * u.deg, float(parts[1]) * u.deg, frame="icrs")
        else:
            units = {} if re.search(r"[hdms°]", str(text)) else {"unit": (u.hourangle, u.deg)}
            coord = SkyCoord(str(text).replace(",", " "), frame="icrs", **units)
        return float(coord.ra.deg), float(coord.dec.deg)
    except (ValueError, TypeError, u.UnitsError):
        msg = (f"{text!r}: expected a sky position SkyCoord reads, e.g. \"12h30m49.4s +12d23m28s\", "
               "\"12:30:49.4 +12:23:28\" or \"187.7058 12.3911\" (deg)")
        raise argparse.ArgumentTypeError(msg) from None


def value_options(parser):
    """Return the long option strings of ``parser`` and its subparsers that take a value.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser.

    Returns
    -------
    set of str
    """
    out, stack = set(), [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:  # noqa: SLF001 - argparse has no public walk of its actions
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                stack.extend(action.choices.values())
            elif action.nargs != 0:
                out.update(o for o in action.option_strings if o.startswith("--"))
    return out


def attach_negative_values(argv, options=None):
    """Join ``--opt -50,-50`` into ``--opt=-50,-50`` so argparse reads a negative value as a value.

    argparse takes an argument that starts with ``-`` for an option unless it is
    a plain negative number, so ``--xy -50,-50`` fails with "expected one
    argument". A long option followed by something that looks like a negative
    number, list or pair is joined with ``=``.

    Parameters
    ----------
    argv : list of str
        Command-line arguments (without the program name).
    options : set of str, optional
        The options that take a value (`value_options`); default: every long option.

    Returns
    -------
    list of str
    """
    out, i = [], 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (arg.startswith("--") and "=" not in arg and len(arg) > 2 and nxt is not None
                and (options is None or arg in options) and _NEGATIVE_VALUE.match(nxt)):
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out
