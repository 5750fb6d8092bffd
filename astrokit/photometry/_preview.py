"""PNG previews (matplotlib, headless): the image with apertures, and the diagnostics of chosen stars."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from astrokit.background import estimate_background, prepare_image
from astrokit.io import as_ccddata
from astrokit.photometry._diagnostics import DISPLAY_STRETCHES, display_stretch, star_diagnostics

__all__ = ["DIAGNOSTIC_PLOTS", "diagnostics_png", "image_png", "preview"]

#: Diagnostic panels `diagnostics_png` can draw.
DIAGNOSTIC_PLOTS = ("radial", "growth", "background", "snr")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure


def image_png(data, xy=(), *, r=None, r_in=None, r_out=None, ids=None, stretch="asinh", percentiles=(0.5, 99.5),
              size=6.0):
    """Render an image with circular apertures and annuli (labelled by ID) as PNG bytes.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image.
    xy : array-like, shape (n, 2)
        Aperture centres, 0-based pixels.
    r, r_in, r_out : float, optional
        Aperture and annulus radii in pixels (circles not drawn when None).
    ids : sequence, optional
        Labels drawn next to the apertures (default 0..n-1).
    stretch : {'linear', 'log', 'sqrt', 'asinh'}
        Display stretch (see `display_stretch`).
    percentiles : tuple of float
        Display limits in percent of the finite pixels.
    size : float
        Figure size in inches (100 dpi).

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    ValueError
        If ``stretch`` or ``percentiles`` is invalid.
    """
    from matplotlib.patches import Circle

    figure_cls = _pyplot()
    grey = display_stretch(data, kind=stretch, percentiles=percentiles)
    fig = figure_cls(figsize=(size, size), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grey, origin="lower", cmap="Greys_r", vmin=0, vmax=1, interpolation="nearest")
    xy = np.asarray(xy, float).reshape(-1, 2)
    ids = list(range(len(xy))) if ids is None else list(ids)
    for (x, y), label in zip(xy, ids):
        for rad, color, style in ((r, "tab:orange", "-"), (r_in, "tab:cyan", "--"), (r_out, "tab:cyan", "--")):
            if rad:
                ax.add_patch(Circle((x, y), rad, fill=False, color=color, ls=style, lw=1))
        ax.annotate(str(label), (x, y), xytext=(x + (r_out or r or 5) * 0.8, y + (r_out or r or 5) * 0.8),
                    color="magenta", fontsize=9, fontweight="bold")
    ax.set_xlabel("x (pix)")
    ax.set_ylabel("y (pix)")
    ax.set_title(f"{stretch} stretch, {percentiles[0]}-{percentiles[1]} %")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def diagnostics_png(diagnostics, *, plots=DIAGNOSTIC_PLOTS, ids=None):
    """Render the diagnostic panels of one or more stars as PNG bytes (one row per star).

    Parameters
    ----------
    diagnostics : sequence of StarDiagnostics
        From `astrokit.photometry.star_diagnostics`.
    plots : sequence of {'radial', 'growth', 'background', 'snr'}
        Panels, in order.
    ids : sequence, optional
        Star labels (default 0..n-1).

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    ValueError
        If a panel name is unknown or ``diagnostics`` is empty.
    """
    plots = list(plots)
    unknown = [p for p in plots if p not in DIAGNOSTIC_PLOTS]
    if unknown or not plots:
        msg = f"unknown plots {unknown}; choose from {list(DIAGNOSTIC_PLOTS)}"
        raise ValueError(msg)
    if not len(diagnostics):
        msg = "no star to plot: give at least one position"
        raise ValueError(msg)
    ids = list(range(len(diagnostics))) if ids is None else list(ids)
    figure_cls = _pyplot()
    fig = figure_cls(figsize=(3.2 * len(plots), 2.8 * len(diagnostics)), dpi=100)
    axes = fig.subplots(len(diagnostics), len(plots), squeeze=False)
    for row, (d, label) in enumerate(zip(diagnostics, ids)):
        for col, name in enumerate(plots):
            ax = axes[row][col]
            if name == "radial":
                ax.plot(d.pixel_radius, d.pixel_value, ".", ms=2, alpha=0.4, color="grey")
                ax.plot(d.profile_radius, d.profile_value, "-", color="tab:blue")
                ax.axvline(d.r, color="tab:orange")
                ax.set_xlabel("radius (pix)")
                ax.set_ylabel("value - background")
                ax.set_title(f"#{label} radial profile, FWHM {d.fwhm:.2f} px", fontsize=9)
            elif name == "growth":
                ax.plot(d.growth_radius, d.growth_flux, "-o", ms=2)
                ax.axvline(d.r, color="tab:orange")
                ax.set_xlabel("aperture radius (pix)")
                ax.set_ylabel("flux (adu)")
                ax.set_title(f"#{label} curve of growth", fontsize=9)
            elif name == "background":
                vals = d.annulus_values[np.isfinite(d.annulus_values)]
                if len(vals):
                    lo, hi = np.percentile(vals, [0.5, 99.5])
                    ax.hist(vals, bins=40, range=(lo, hi + 1e-9), color="tab:cyan")
                ax.axvline(d.background, color="k")
                ax.set_xlabel("annulus pixel value (adu)")
                ax.set_title(f"#{label} background {d.background:.3g} ± {d.background_std:.2g}", fontsize=9)
            else:
                ax.plot(d.snr_radius, d.snr_value, "-o", ms=2, color="tab:green")
                ax.axvline(d.r, color="tab:orange")
                ax.set_xlabel("aperture radius (pix)")
                ax.set_ylabel("SNR")
                ax.set_title(f"#{label} SNR vs radius", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def preview(image, xy, *, r, r_in=None, r_out=None, plots=DIAGNOSTIC_PLOTS, stretch="asinh", percentiles=(0.5, 99.5),
            out=None, bundle=None, gain=None):
    """Diagnostics of chosen stars: preview and diagnostics PNGs and a metrics dict, optionally bundled in a zip.

    Parameters
    ----------
    image : path, HDU, (array, header), (array, WCS), NDData or CCDData
        The image (see `astrokit.io.as_ccddata`).
    xy : array-like, shape (n, 2)
        Star positions, 0-based pixels.
    r : float
        Aperture radius in pixels.
    r_in, r_out : float, optional
        Annulus radii in pixels; default ``r + 3`` and ``r + 8``.
    plots : sequence of {'radial', 'growth', 'background', 'snr'}
        Diagnostic panels.
    stretch : {'linear', 'log', 'sqrt', 'asinh'}
        Display stretch of the preview.
    percentiles : tuple of float
        Display limits (percent of finite pixels).
    out : path-like, optional
        PNG file for the preview; the diagnostics go next to it as ``<stem>_diagnostics.png``.
    bundle : path-like, optional
        Zip file holding ``preview.png``, ``diagnostics.png`` and ``metrics.json``.
    gain : float, optional
        e-/ADU for the Poisson term.

    Returns
    -------
    dict
        ``preview_png`` and ``diagnostics_png`` (bytes), ``metrics`` (list of
        dicts, one per star, NaN as None) and ``files`` (paths written).

    Raises
    ------
    ValueError
        If a radius, plot or stretch is invalid or ``xy`` is empty.
    DataError
        If the image cannot be read.
    """
    if stretch not in DISPLAY_STRETCHES:
        msg = f"unknown stretch {stretch!r}; choose one of {list(DISPLAY_STRETCHES)}"
        raise ValueError(msg)
    r_in = float(r) + 3.0 if r_in is None else r_in
    r_out = float(r) + 8.0 if r_out is None else r_out
    ccd = as_ccddata(image)
    data, bad = prepare_image(ccd.data, ccd.mask)
    xy = np.asarray(xy, float).reshape(-1, 2)
    if not len(xy):
        msg = "give at least one star position (--xy X,Y)"
        raise ValueError(msg)
    rms = None if bad.all() else estimate_background(data, mask=bad).rms
    diags = [star_diagnostics(np.where(bad, np.nan, data), x, y, r=r, r_in=r_in, r_out=r_out, rms=rms, gain=gain)
             for x, y in xy]
    prev = image_png(np.where(bad, np.nan, data), xy, r=r, r_in=r_in, r_out=r_out, stretch=stretch,
                     percentiles=percentiles)
    diag = diagnostics_png(diags, plots=plots)
    metrics = [{k: (v if not (isinstance(v, float) and not np.isfinite(v)) else None) for k, v in
                dict(d.metrics(), id=i).items()} for i, d in enumerate(diags)]
    files = []
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(prev)
        second = out.with_name(f"{out.stem}_diagnostics.png")
        second.write_bytes(diag)
        files += [out, second]
    if bundle is not None:
        bundle = Path(bundle)
        bundle.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("preview.png", prev)
            z.writestr("diagnostics.png", diag)
            z.writestr("metrics.json", json.dumps(metrics, indent=1, allow_nan=False))
        files.append(bundle)
    return {"preview_png": prev, "diagnostics_png": diag, "metrics": metrics, "files": files}
