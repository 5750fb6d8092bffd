"""Bokeh figures for notebooks and dashboards: cutout triplets, source catalogues, score distributions."""

import numpy as np

from astrokit.widgets._render import stretch

__all__ = ["triplet_figure", "sources_figure", "score_histogram"]

_TITLES = ("science", "reference", "difference")


def triplet_figure(science, reference, difference, *, title="", kind="asinh", size=180):
    """Science / reference / difference stamps side by side, science and reference on one shared stretch.

    Parameters
    ----------
    science, reference, difference : 2D ndarray, shape (ny, nx)
        The stamps (NaN allowed).
    title : str
        Shown above the science stamp.
    kind : {'asinh', 'linear'}
        Stretch (see `astrokit.widgets.stretch`); limits are the 0.5-99.5
        percentiles of science and reference together, and of the difference alone.
    size : int
        Width and height of each panel in screen pixels.

    Returns
    -------
    bokeh.models.GridBox
        A row of three image figures.
    """
    from bokeh.layouts import gridplot
    from bokeh.plotting import figure

    shared = np.concatenate([np.asarray(science, float), np.asarray(reference, float)], axis=1)
    grey_shared = stretch(shared, kind=kind)
    ny, nx = np.shape(science)
    greys = (grey_shared[:, :nx], grey_shared[:, nx:], stretch(difference, kind=kind))
    figs = []
    for name, grey in zip(_TITLES, greys):
        f = figure(width=size, height=size, title=f"{title} {name}".strip() if name == "science" else name,
                   x_range=(0, nx), y_range=(0, ny), tools="", toolbar_location=None)
        f.image(image=[grey.astype(np.uint8)], x=0, y=0, dw=nx, dh=ny, palette="Greys256")
        f.axis.visible = False
        f.grid.visible = False
        figs.append(f)
    return gridplot([figs], toolbar_location=None)


def sources_figure(x, y, mag, *, width=420, height=420, title="sources"):
    """Plot detected sources on the pixel grid, brighter sources drawn larger.

    Parameters
    ----------
    x, y : 1D array-like, shape (n,)
        0-based pixel positions.
    mag : 1D array-like, shape (n,)
        Magnitudes (instrumental or calibrated).
    width, height : int
        Figure size in screen pixels.
    title : str
        Figure title.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    mag = np.asarray(mag, float)
    finite = np.isfinite(mag)
    lo, hi = (np.nanmin(mag[finite]), np.nanmax(mag[finite])) if finite.any() else (0.0, 1.0)
    radius = np.where(finite, 2 + 8 * (hi - mag) / max(hi - lo, 1e-9), 2)
    src = ColumnDataSource({"x": np.asarray(x, float), "y": np.asarray(y, float), "mag": mag, "size": radius})
    f = figure(width=width, height=height, title=title, match_aspect=True,
               tooltips=[("x", "@x{0.0}"), ("y", "@y{0.0}"), ("mag", "@mag{0.00}")])
    f.scatter("x", "y", size="size", source=src, fill_alpha=0.3, line_alpha=0.8)
    f.xaxis.axis_label, f.yaxis.axis_label = "x (pix)", "y (pix)"
    return f


def score_histogram(scores_by_group, *, bins=20, width=520, height=260, title="real-bogus scores"):
    """Histogram of real-bogus scores, one step line per group (e.g. candidate origin).

    Parameters
    ----------
    scores_by_group : dict of str -> 1D array-like
        Scores in [0, 1] per group name.
    bins : int
        Number of bins over [0, 1].
    width, height : int
        Figure size in screen pixels.
    title : str
        Figure title.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure

    edges = np.linspace(0, 1, bins + 1)
    f = figure(width=width, height=height, title=title, x_range=(0, 1))
    for color, (name, scores) in zip(Category10_10, scores_by_group.items()):
        counts, _ = np.histogram(np.asarray(scores, float), bins=edges)
        f.step(edges[:-1], counts, mode="after", color=color, legend_label=str(name), line_width=2)
    f.xaxis.axis_label, f.yaxis.axis_label = "real_bogus", "candidates"
    f.legend.location = "top_center"
    return f
