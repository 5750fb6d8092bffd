"""The labels summary panel: counts per user, agreement between users and with the model."""

import html
import math

from astrokit.labels import labels_summary

__all__ = ["LabelsSummary", "summary_html"]

_TITLES = {"counts": "Labels per user",
           "users": "Agreement between users (Cohen's kappa, candidates both decided)",
           "model": "Agreement with the model"}


def _cell(value):
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return html.escape(str(value))


def summary_html(summary, *, threshold=0.5):
    """Render the tables of `astrokit.labels.labels_summary` as HTML.

    Parameters
    ----------
    summary : dict of str -> pandas.DataFrame
        ``counts``, ``users`` and ``model`` tables.
    threshold : float
        The model threshold used (shown in the heading).

    Returns
    -------
    str
        HTML with one table per part ("none yet" for an empty one).
    """
    parts = []
    for key, df in summary.items():
        title = _TITLES.get(key, key)
        if key == "model":
            title += f" (real when real_bogus ≥ {threshold:g})"
        parts.append(f"<h4>{html.escape(title)}</h4>")
        if df.empty:
            parts.append("<p><i>none yet</i></p>")
            continue
        head = "".join(f"<th style='padding:2px 8px'>{html.escape(str(c))}</th>" for c in df.columns)
        body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{_cell(v)}</td>" for v in row) + "</tr>"
                       for row in df.itertuples(index=False))
        parts.append(f"<table class='astrokit-summary-{key}'><tr>{head}</tr>{body}</table>")
    return "".join(parts)


class LabelsSummary:
    """A panel with the labels summary of a store and a Refresh button.

    Parameters
    ----------
    store : astrokit.store.Store or path-like
        The store.
    threshold : float
        Score at and above which the model's answer is real.
    """

    def __init__(self, store, *, threshold=0.5):
        from astrokit.store import Store

        self.store = store if isinstance(store, Store) else Store(store)
        self.threshold = threshold
        self._widget = None

    def refresh(self):
        """Recompute the summary from the store and show it; errors are shown in the panel.

        Returns
        -------
        dict of str -> pandas.DataFrame or None
            The summary, or None if it could not be computed.
        """
        try:
            summary = labels_summary(self.store, threshold=self.threshold)
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            if self._widget is not None:
                self._w_html.value = f"<div class='astrokit-error'>{html.escape(f'{type(exc).__name__}: {exc}')}</div>"
            return None
        if self._widget is not None:
            self._w_html.value = summary_html(summary, threshold=self.threshold)
        return summary

    @property
    def widget(self):
        """The ipywidgets panel (built and filled on first access)."""
        if self._widget is None:
            import ipywidgets as w

            self._w_html = w.HTML()
            button = w.Button(description="Refresh", layout=w.Layout(width="90px"))
            button.add_class("astrokit-summary-refresh")
            button.on_click(lambda _b: self.refresh())
            self._widget = w.VBox([w.HTML("<b>Labels summary</b>"), button, self._w_html])
            self._widget.add_class("astrokit-summary")
            self.refresh()
        return self._widget

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
