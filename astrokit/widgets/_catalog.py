"""The catalog dashboard: totals, integration, growth, sessions, notes, processing sessions, search, disk, backup.

The file search shows each frame's header and thumbnail; the backup panel the last backup and its cost.
"""

import base64
import html
import os
from datetime import datetime, timezone

import numpy as np

__all__ = ["CatalogBrowser", "integration_figure", "growth_figure", "frame_thumbnail", "frame_header", "disk_use",
           "backup_status"]

_SEARCH_COLUMNS = ("path", "object", "imagetyp", "band", "exptime", "date_obs", "telescope", "status")


def _table_html(rows, columns, *, css_class, limit=200, empty="no frames"):
    if not rows:
        return f"<div class='{css_class}'><i>{html.escape(empty)}</i></div>"
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows[:limit]:
        cells = []
        for c in columns:
            v = r.get(c)
            if c == "path" and v:
                v = v.rsplit("/", 1)[-1]
            elif hasattr(v, "isoformat"):
                v = v.strftime("%Y-%m-%d %H:%M:%S")
            elif isinstance(v, float):
                v = f"{v:g}"
            cells.append(f"<td style='padding:2px 8px'>{html.escape('' if v is None else str(v))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = f"<div><small>{len(rows) - limit} more not shown</small></div>" if len(rows) > limit else ""
    return (f"<div class='{css_class}'><table style='border-collapse:collapse;font-size:12px'>"
            f"<tr>{head}</tr>{''.join(body)}</table>{more}</div>")


def integration_figure(stats, *, width=640, height=None):
    """Horizontal bars of integration time (hours) per target and band.

    Parameters
    ----------
    stats : pyarrow.Table
        `astrokit.catalog.frame_stats` grouped by ``object`` and ``band``.
    width : int
        Figure width in screen pixels.
    height : int, optional
        Figure height; default grows with the number of bars.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import ColumnDataSource, FactorRange
    from bokeh.plotting import figure

    rows = stats.to_pylist()
    factors = [f"{r['object'] or 'unknown'} · {r['band'] or 'no band'}" for r in rows]
    hours = [r["integration_s"] / 3600.0 for r in rows]
    source = ColumnDataSource({"factor": factors, "hours": hours, "n": [r["n_frames"] for r in rows]})
    fig = figure(y_range=FactorRange(*reversed(factors)) if factors else FactorRange(), width=width,
                 height=height or max(160, 40 + 22 * len(factors)), title="integration time by target and band (h)",
                 tools="hover", tooltips=[("target, band", "@factor"), ("hours", "@hours{0.00}"), ("frames", "@n")],
                 toolbar_location=None)
    fig.hbar(y="factor", right="hours", height=0.8, source=source, color="#3f6fb5")
    fig.x_range.start = 0
    fig.xaxis.axis_label = "hours"
    return fig


def growth_figure(dates, exptimes, *, width=640, height=240):
    """Plot collection growth: cumulative light frames and integration hours against observation date.

    Parameters
    ----------
    dates : sequence of datetime.datetime, shape (n,)
        Start of exposure of each light frame (any order).
    exptimes : sequence of float, shape (n,)
        Exposure times in seconds (None counts as 0).
    width, height : int
        Figure size in screen pixels.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import LinearAxis, Range1d
    from bokeh.plotting import figure

    pairs = sorted((d, e or 0.0) for d, e in zip(dates, exptimes) if d is not None)
    xs = [d.replace(tzinfo=None) for d, _ in pairs]
    frames = list(range(1, len(pairs) + 1))
    hours, total = [], 0.0
    for _, e in pairs:
        total += e / 3600.0
        hours.append(total)
    fig = figure(x_axis_type="datetime", width=width, height=height, title="collection growth",
                 tools="", toolbar_location=None)
    fig.step(xs, frames, mode="after", color="#3f6fb5", legend_label="light frames")
    fig.y_range = Range1d(0, max(frames or [1]) * 1.05)
    fig.extra_y_ranges = {"hours": Range1d(0, max(hours or [1.0]) * 1.05 or 1.0)}
    fig.add_layout(LinearAxis(y_range_name="hours", axis_label="hours"), "right")
    fig.step(xs, hours, mode="after", color="#d9822b", y_range_name="hours", legend_label="integration (h)")
    fig.yaxis[0].axis_label = "frames"
    fig.legend.location = "top_left"
    return fig


THUMBNAIL_SIZE = 256  # px, the longer side of a frame's thumbnail


def _frame_row(store, exposure_id):
    from astrokit.exceptions import AstrokitError

    rows = store.sql("select * from frames where exposure_id = ? limit 1", params=[str(exposure_id)]).to_pylist()
    if not rows:
        msg = f"no frame with exposure_id {exposure_id!r}"
        raise AstrokitError(msg)
    return rows[0]


def _local(row):
    from astrokit.io import frame_path, is_s3, local_copy

    path = frame_path(row)
    return str(local_copy(path)) if is_s3(path) else path


def frame_header(store, exposure_id):
    """Return the FITS header of a catalogued frame, as text (80-character cards, one a line).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    exposure_id : str
        The frame (``frames.exposure_id``).

    Returns
    -------
    str
        The header of the frame's HDU; for a PNG, JPEG or TIFF frame, the
        catalogued columns as ``KEY = value`` lines.

    Raises
    ------
    AstrokitError
        If the frame is unknown.
    DataError
        If its file cannot be read (the message names it).
    """
    from astropy.io import fits

    from astrokit.exceptions import DataError

    row = _frame_row(store, exposure_id)
    if row.get("format") not in (None, "fits"):
        keys = ("path", "format", "object", "imagetyp", "band", "exptime", "date_obs", "telescope", "instrument",
                "naxis1", "naxis2")
        return "\n".join(f"{k.upper():8s}= {row.get(k)}" for k in keys)
    try:
        header = fits.getheader(_local(row), ext=row["hdu"] or 0)
    except (OSError, IndexError, ValueError) as exc:
        msg = f"{row['path']}: header not readable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        raise DataError(msg) from None
    return "\n".join(str(card) for card in header.cards)


def _thumbnail_png(data, size):
    from astrokit.widgets._render import stretch, to_png

    data = np.asarray(data, dtype=np.float32)
    if data.ndim > 2:  # a cube: its first plane
        data = data.reshape(-1, *data.shape[-2:])[0]
    factor = max(1, int(np.ceil(max(data.shape) / float(size))))
    ny, nx = data.shape[0] // factor * factor, data.shape[1] // factor * factor
    if factor > 1:
        with np.errstate(invalid="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
                data = np.nanmean(data[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor), axis=(1, 3))
    grey = stretch(data, kind="asinh", percentiles=(1.0, 99.5))
    return to_png(grey, scale=1), grey.shape


def frame_thumbnail(store, exposure_id, *, size=THUMBNAIL_SIZE):
    """Return a small PNG of a frame, made on first request and kept as an artifact (table ``thumbnails``).

    The image is block-averaged so that its longer side is at most ``size``
    pixels, stretched (asinh between the 1st and 99.5th percentiles) and
    shown north up for a frame with the usual FITS orientation. A thumbnail is
    made again when the frame's file changed (its SHA-256).

    Parameters
    ----------
    store : astrokit.store.Store
        The store (the PNG goes to ``artifacts/``, its row to ``thumbnails``).
    exposure_id : str
        The frame.
    size : int
        Longest side of the thumbnail in pixels (at least).

    Returns
    -------
    bytes
        The PNG.

    Raises
    ------
    AstrokitError
        If the frame is unknown or quarantined.
    DataError
        If its pixels cannot be read.
    """
    from astrokit.exceptions import AstrokitError
    from astrokit.io import read_image

    row = _frame_row(store, exposure_id)
    if row["status"] != "ok":
        msg = f"{row['path']}: quarantined ({row['error']}); no thumbnail"
        raise AstrokitError(msg)
    done = store.sql("select path from thumbnails where exposure_id = ? and sha256 = ? and width <= ? "
                     "and height <= ? and greatest(width, height) > ? order by created_at desc limit 1",
                     params=[row["exposure_id"], row["sha256"], int(size), int(size), int(size) // 2]).to_pylist()
    if done and store.exists(done[0]["path"]):
        return store.read_bytes(done[0]["path"])
    image = read_image(_local(row), row["hdu"])
    png, (height, width) = _thumbnail_png(image.data, int(size))
    key = store.key_of(store.put_artifact(png, "png"))
    store.write("thumbnails", [{"exposure_id": row["exposure_id"], "sha256": row["sha256"], "path": key,
                                "width": width, "height": height, "created_at": datetime.now(timezone.utc)}],
                key=row["exposure_id"])
    return png


#: Groupings of `disk_use`: name -> SQL expression over ``frames``.
DISK_GROUPS = {"session": "coalesce(session_id, '(calibration frames)')", "camera": "coalesce(instrument, '?')",
               "telescope": "coalesce(telescope, '?')"}


def disk_use(store, by="session"):
    """Bytes on disk of the catalogued files, by session, camera or telescope.

    Each file counts once (a file of several HDUs has one row per HDU in
    ``frames``). Quarantined files are counted under their own line.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    by : {'session', 'camera', 'telescope'}
        Grouping.

    Returns
    -------
    pyarrow.Table
        ``group``, ``files``, ``bytes`` and ``gb`` (bytes / 1e9), largest first.

    Raises
    ------
    AstrokitError
        If ``by`` is not one of `DISK_GROUPS`.
    """
    from astrokit.exceptions import AstrokitError

    if by not in DISK_GROUPS:
        msg = f"unknown grouping {by!r}; choose from {', '.join(DISK_GROUPS)}"
        raise AstrokitError(msg)
    return store.sql(
        f"""select case when status = 'ok' then {DISK_GROUPS[by]} else '(quarantined)' end as "group",
                   count(*) as files, coalesce(sum(size_bytes), 0)::bigint as bytes,
                   round(coalesce(sum(size_bytes), 0) / 1e9, 3) as gb
            from (select path, min(size_bytes) as size_bytes, min(status) as status, min(session_id) as session_id,
                         min(instrument) as instrument, min(telescope) as telescope from frames group by path)
            group by 1 order by bytes desc, 1""")


def backup_status(store, to, *, client=None):
    """Describe the last backup of a store: when, what it holds, which sessions' raw files it covers, its cost.

    Parameters
    ----------
    store : astrokit.store.Store
        The store backed up.
    to : str
        ``s3://bucket/prefix`` of the backups (as given to ``astrokit backup --to``).
    client : botocore.client.S3, optional
        Client (default from the AWS environment, ``$AWS_ENDPOINT_URL``).

    Returns
    -------
    dict
        ``backup_id``, ``created_at`` (ISO), ``files``, ``bytes``, ``include_raw``;
        ``backups`` (how many); ``frames_after`` (frames ingested after it);
        ``sessions``: per session ``session_id``, ``n_files``, ``n_covered``
        (light files whose content, by SHA-256, is in the backup);
        ``cost``: `astrokit.store._backup.storage_report` (USD per month by
        storage class, as ``astrokit backup cost`` prints it).

    Raises
    ------
    AstrokitError
        If there is no backup there or the bucket cannot be read.
    """
    from astrokit.io._s3 import s3_client
    from astrokit.store._backup import list_backups, read_manifest, storage_report

    client = client or s3_client()
    manifest = read_manifest(to, client=client)
    hashes = {f["sha256"] for f in manifest["files"] if f["path"].startswith("raw/")}
    created = datetime.fromisoformat(manifest["created_at"])
    sessions = []
    for s in store.sql("select session_id, list(distinct sha256) as hashes from frames where status = 'ok' and "
                       "session_id is not null group by 1 order by 1").to_pylist():
        sessions.append({"session_id": s["session_id"], "n_files": len(s["hashes"]),
                         "n_covered": sum(h in hashes for h in s["hashes"])})
    after = store.sql("select count(*) from frames where ingested_at > ?", params=[created]).column(0)[0].as_py()
    return {"backup_id": manifest["backup_id"], "created_at": manifest["created_at"],
            "files": len(manifest["files"]), "bytes": manifest["bytes"], "include_raw": manifest.get("include_raw"),
            "backups": len(list_backups(to, client=client)), "frames_after": after, "sessions": sessions,
            "cost": storage_report(to, client=client)}


def _markdown(text):
    """HTML of a note: its YAML front matter as a small block, the rest rendered as Markdown (raw HTML escaped)."""
    front = ""
    if text.startswith("---\n") and "\n---\n" in text[3:]:
        end = text.index("\n---\n", 3)
        front = (f"<pre class='astrokit-note-front-matter' style='font-size:11px;color:#555'>"
                 f"{html.escape(text[4:end], quote=False)}</pre>")
        text = text[end + 5:]
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # pragma: no cover - markdown-it-py comes with the dashboards extra
        return front + f"<pre>{html.escape(text, quote=False)}</pre>"
    return front + MarkdownIt("commonmark", {"html": False}).render(text)


def _error_html(exc, css_class="astrokit-message"):
    text = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"<div class='{css_class}' style='color:#b00'>{html.escape(text, quote=False)}</div>"


class CatalogBrowser:
    """The catalog of a store in one widget: totals, integration, growth, sessions, notes, processing, search.

    Also each frame's header and thumbnail, the disk use and the backup status.

    The buttons call the public API (`astrokit.catalog.search_frames`,
    `astrokit.catalog.save_session_note`, ...); errors are shown in the page
    (the API still raises), and a failed search clears the previous results.

    Parameters
    ----------
    store : astrokit.store.Store or path-like, optional
        The store; default ``$ASTROKIT_STORE`` or ``./astrokit-data``.
    max_rows : int
        Most rows shown in a table (search results, a session's frames).
    notes : path-like, optional
        Notes folder of the imaging sessions (Obsidian vault); default
        ``$ASTROKIT_NOTES``, else the folder of the last note saved.
    backup : str, optional
        ``s3://bucket/prefix`` of the store's backups (default ``$ASTROKIT_BACKUP``);
        without it the backup panel says how to set it.
    """

    def __init__(self, store=None, *, max_rows=200, notes=None, backup=None):
        from astrokit.store import Store

        self.store = store if isinstance(store, Store) else Store(store)
        self.max_rows = int(max_rows)
        self.notes = notes or os.environ.get("ASTROKIT_NOTES") or None
        self.backup = backup or os.environ.get("ASTROKIT_BACKUP") or None
        self.totals = {}
        self.sessions = []
        self.processing = []
        self.results = []
        self.note_session = None
        self._widget = None
        self._build()

    # -- data --------------------------------------------------------------------------------
    def load(self):
        """Read the catalog from the store and fill every panel; return self."""
        from astrokit.catalog import frame_stats, list_processing_sessions

        t = self.store.sql(
            """select count(distinct path) as files, count(*) filter (where status = 'ok') as frames,
                      count(distinct path) filter (where status = 'quarantined') as quarantined,
                      count(*) filter (where status = 'ok' and imagetyp = 'light') as lights,
                      coalesce(sum(exptime) filter (where status = 'ok' and imagetyp = 'light'), 0) as integration_s,
                      count(distinct object) filter (where status = 'ok' and imagetyp = 'light') as targets
               from frames""").to_pylist()[0]
        t["sessions"] = self.store.sql("select count(*) n from sessions").column("n")[0].as_py()
        self.totals = t
        self._w_totals.value = (
            "<div class='astrokit-catalog-totals' style='font-size:15px'>"
            f"<b>{t['files']}</b> files · <b>{t['frames']}</b> frames ok · <b>{t['quarantined']}</b> quarantined · "
            f"<b>{t['lights']}</b> light frames of <b>{t['targets']}</b> targets in <b>{t['sessions']}</b> sessions"
            f" · <b>{t['integration_s'] / 3600:.2f} h</b> integration</div>")
        from astrokit.widgets._bokehjs import bokeh_widget

        stats = frame_stats(self.store, ["object", "band"])
        lights = self.store.sql("select date_obs, exptime from frames where status = 'ok' and imagetyp = 'light'")
        self._w_integration.children = [bokeh_widget(integration_figure(stats))]
        self._w_growth.children = [bokeh_widget(growth_figure(lights.column("date_obs").to_pylist(),
                                                              lights.column("exptime").to_pylist()))]
        self.sessions = self.store.sql("select * from sessions order by night desc, session_id").to_pylist()
        self._w_session.options = [(f"{s['night']}  {s['object']}  ({s['telescope']}, {s['n_frames']} frames)",
                                    s["session_id"]) for s in self.sessions]
        if self.sessions:
            self._w_session.value = self.sessions[0]["session_id"]
            self.show_session(self.sessions[0]["session_id"])
        else:
            self._w_session_detail.value = "<i>no sessions yet: ingest some light frames</i>"
        self.processing = list_processing_sessions(self.store).to_pylist()
        self._w_processing.options = [(f"{p['name']}  ({p['target'] or '?'}, {p['n_lights']} lights, "
                                       f"{p['n_final']} final)", p["processing_id"]) for p in self.processing]
        if self.processing:
            self.show_processing(self.processing[0]["processing_id"])
        else:
            self._w_processing_detail.value = ("<i>no processing sessions: astrokit processing create NAME --dest DIR "
                                               "--frames QUERY</i>")
        self.show_disk_use()
        self.show_backup()
        self.search()
        return self

    def show_session(self, session_id):
        """Show the frames of one session, how many calibration frames apply to them, and its note.

        Parameters
        ----------
        session_id : str
            A ``sessions.session_id``.
        """
        frames = self.store.sql("select * from frames where session_id = ? order by date_obs, path",
                                params=[session_id]).to_pylist()
        n_cal = self.store.sql(
            "select kind, count(distinct calib_id) n from calibrations where light_id in "
            "(select exposure_id from frames where session_id = ?) group by kind order by kind",
            params=[session_id]).to_pylist()
        cal = ", ".join(f"{r['n']} {r['kind']}" for r in n_cal) or "none"
        self._w_session_detail.value = (f"<div class='astrokit-session-detail'><b>{html.escape(session_id)}</b>: "
                                        f"calibration frames that apply: {cal}</div>"
                                        + _table_html(frames, _SEARCH_COLUMNS, css_class="astrokit-session-frames",
                                                      limit=self.max_rows))
        self.show_note(session_id)

    def show_processing(self, processing_id):
        """Show one processing session: its frames by role and the files of its folder, and its note.

        Parameters
        ----------
        processing_id : str
            A ``processing_sessions.processing_id``.
        """
        from astrokit.catalog import show_processing_session

        shown = show_processing_session(self.store, processing_id)
        s, frames, files = shown["session"], shown["frames"].to_pylist(), shown["files"].to_pylist()
        roles = {}
        for f in frames:
            roles[f["role"]] = roles.get(f["role"], 0) + 1
        counts = ", ".join(f"{n} {r}" for r, n in roles.items()) or "no frames"
        self._w_processing_detail.value = (
            f"<div class='astrokit-processing-detail'><b>{html.escape(s['name'])}</b> "
            f"(target {html.escape(str(s['target']))}): {counts}; folder <code>{html.escape(s['folder'])}</code></div>"
            + _table_html(files, ("role", "path", "format", "size_bytes", "object"),
                          css_class="astrokit-processing-files", limit=self.max_rows,
                          empty="no files in its folder yet (catalogued by the next astrokit ingest)"))
        self.show_note(processing_id)

    def show_note(self, session_id):
        """Show the Markdown note of an imaging or processing session in the editor (created when missing).

        Parameters
        ----------
        session_id : str
            ``sessions.session_id`` or ``processing_sessions.processing_id``.
        """
        from astrokit.catalog import read_session_note

        self.note_session = session_id
        self._w_note_status.value = ""
        try:
            path, text = read_session_note(self.store, session_id, notes=self.notes)
        except Exception as exc:  # noqa: BLE001 - the widget shows every error; the API raises
            self._w_note.value = ""
            self._w_note_preview.value = ""
            self._w_note_status.value = _error_html(exc, "astrokit-note-status")
            return
        self._w_note_title.value = (f"<div class='astrokit-note-title'>note of <b>{html.escape(session_id)}</b>: "
                                    f"<code>{html.escape(str(path))}</code></div>")
        self._w_note.value = text
        self._w_note_preview.value = f"<div class='astrokit-note-preview'>{_markdown(text)}</div>"

    def save_note(self, text=None):
        """Save the note in the editor (or ``text``) to the notes file and the store.

        Parameters
        ----------
        text : str, optional
            The note's Markdown; default the editor's content.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        AstrokitError
            If no session is shown, or the note cannot be placed (see `astrokit.catalog.save_session_note`).
        """
        from astrokit.catalog import save_session_note
        from astrokit.exceptions import AstrokitError

        if self.note_session is None:
            msg = "no session selected: choose an imaging or processing session first"
            raise AstrokitError(msg)
        text = self._w_note.value if text is None else text
        path = save_session_note(self.store, self.note_session, text, notes=self.notes)
        self._w_note_preview.value = f"<div class='astrokit-note-preview'>{_markdown(text)}</div>"
        self._w_note_status.value = (f"<div class='astrokit-note-status' style='color:#080'>saved to "
                                     f"{html.escape(str(path))}</div>")
        return path

    def show_frame(self, exposure_id):
        """Show a frame's header and thumbnail.

        Parameters
        ----------
        exposure_id : str
            The frame.
        """
        self._w_frame_error.value = ""
        try:
            header = frame_header(self.store, exposure_id)
            self._w_header.value = f"<pre class='astrokit-frame-header' style='font-size:11px'>" \
                                   f"{html.escape(header, quote=False)}</pre>"
        except Exception as exc:  # noqa: BLE001 - the widget shows every error; the API raises
            self._w_header.value = ""
            self._w_frame_error.value = _error_html(exc, "astrokit-frame-error")
            return
        try:
            png = frame_thumbnail(self.store, exposure_id)
            self._w_thumbnail.value = (f"<img class='astrokit-frame-thumbnail' alt='thumbnail of "
                                       f"{html.escape(exposure_id)}' src='data:image/png;base64,"
                                       f"{base64.b64encode(png).decode()}'>")
        except Exception as exc:  # noqa: BLE001
            self._w_thumbnail.value = ""
            self._w_frame_error.value = _error_html(exc, "astrokit-frame-error")

    def show_disk_use(self):
        """Fill the disk-use panel (by session, camera and telescope)."""
        parts = []
        for by in DISK_GROUPS:
            rows = disk_use(self.store, by).to_pylist()
            for r in rows:
                r[by] = r.pop("group")
                r["MB"] = f"{r['bytes'] / 1e6:.1f}"
            parts.append(f"<div style='display:inline-block;vertical-align:top;margin-right:24px'><b>by {by}</b>"
                         + _table_html(rows, (by, "files", "MB"), css_class=f"astrokit-disk-{by}",
                                       limit=self.max_rows) + "</div>")
        self._w_disk.value = f"<div class='astrokit-disk-use'>{''.join(parts)}</div>"

    def show_backup(self):
        """Fill the backup panel from the last backup at ``backup`` (errors shown in the panel)."""
        if not self.backup:
            self._w_backup.value = ("<div class='astrokit-backup-status'><i>no backup location: set the dashboard's "
                                    "backup parameter or $ASTROKIT_BACKUP to the s3://BUCKET/PREFIX of "
                                    "<code>astrokit backup --to</code></i></div>")
            return
        try:
            st = backup_status(self.store, self.backup)
        except Exception as exc:  # noqa: BLE001 - the widget shows every error; the API raises
            self._w_backup.value = _error_html(exc, "astrokit-backup-status")
            return
        covered = sum(s["n_covered"] == s["n_files"] for s in st["sessions"])
        raw = "" if st["include_raw"] else " (raw files not included: <code>astrokit backup --include-raw</code>)"
        after = (f"; <b>{st['frames_after']}</b> frames ingested since" if st["frames_after"] else "")
        sessions = [{"session": s["session_id"], "covered": f"{s['n_covered']} of {s['n_files']} files"}
                    for s in st["sessions"]]
        cost = [{"class": c, "objects": r["objects"], "MB": f"{r['bytes'] / 1e6:.2f}",
                 "USD/month": f"{r['usd_per_month']:.6f}"} for c, r in sorted(st["cost"]["by_class"].items())]
        cost.append({"class": "total", "USD/month": f"{st['cost']['usd_per_month']:.6f}"})
        self._w_backup.value = (
            f"<div class='astrokit-backup-status'>last backup <b>{html.escape(st['backup_id'])}</b> at "
            f"{html.escape(st['created_at'][:19])} UTC to <code>{html.escape(self.backup)}</code>: "
            f"{st['files']} files, "
            f"{st['bytes'] / 1e6:.1f} MB ({st['backups']} backups){after}; sessions covered: <b>{covered}</b> of "
            f"{len(sessions)}{raw}</div>"
            + _table_html(sessions, ("session", "covered"), css_class="astrokit-backup-sessions", limit=self.max_rows)
            + _table_html(cost, ("class", "objects", "MB", "USD/month"), css_class="astrokit-backup-cost"))

    def search(self, **criteria):
        """Search frames with the form's values (or ``criteria``) and show the result.

        Parameters
        ----------
        **criteria
            Keyword arguments of `astrokit.catalog.search_frames`; default the form's
            object, band, since, until and frame type.

        Returns
        -------
        list of dict
            The rows found.
        """
        from astrokit.catalog import search_frames

        if not criteria:
            criteria = {"object": self._w_object.value.strip() or None, "band": self._w_band.value.strip() or None,
                        "since": self._w_since.value.strip() or None, "until": self._w_until.value.strip() or None,
                        "imagetyp": None if self._w_type.value == "any" else self._w_type.value}
        self.results = search_frames(self.store, status=None, **criteria).to_pylist()
        self._w_results.value = (f"<div class='astrokit-search-count'>{len(self.results)} frames</div>"
                                 + _table_html(self.results, _SEARCH_COLUMNS, css_class="astrokit-search-results",
                                               limit=self.max_rows))
        self._w_frame.options = [(f"{(r['path'] or '').rsplit('/', 1)[-1]}  [{r['hdu']}]  {r['object'] or ''}  "
                                  f"{r['imagetyp'] or ''}", r["exposure_id"])
                                 for r in self.results[:self.max_rows] if r["status"] == "ok"]
        return self.results

    # -- UI ----------------------------------------------------------------------------------
    def _clear_results(self):
        self.results = []
        self._w_results.value = ""
        self._w_frame.options = []
        self._w_header.value = self._w_thumbnail.value = self._w_frame_error.value = ""

    def _on_search(self, _button=None):
        try:
            self.search()
            self._w_message.value = ""
        except Exception as exc:  # noqa: BLE001 - the widget shows every error; the API raises
            self._clear_results()  # never a stale table under the error
            self._w_message.value = _error_html(exc)

    def _on_session(self, change):
        if change["new"]:
            self.show_session(change["new"])

    def _on_processing(self, change):
        if change["new"]:
            self.show_processing(change["new"])

    def _on_frame(self, change):
        if change["new"]:
            self.show_frame(change["new"])

    def _on_save_note(self, _button=None):
        try:
            self.save_note()
        except Exception as exc:  # noqa: BLE001 - the widget shows every error; the API raises
            self._w_note_status.value = _error_html(exc, "astrokit-note-status")

    def _on_backup(self, _button=None):
        self.show_backup()

    def _build(self):
        import ipywidgets as w

        def classed(widget, name):
            widget.add_class(name)
            return widget

        self._w_totals = w.HTML()
        self._w_integration = classed(w.Box([]), "astrokit-integration")
        self._w_growth = classed(w.Box([]), "astrokit-growth")
        self._w_session = classed(w.Select(options=[], rows=6, description="session", layout=w.Layout(width="640px")),
                                  "astrokit-session-select")
        self._w_session.observe(self._on_session, names="value")
        self._w_session_detail = w.HTML()
        self._w_note_title = w.HTML()
        self._w_note = classed(w.Textarea(layout=w.Layout(width="640px", height="220px")), "astrokit-note-editor")
        self._w_note_save = classed(w.Button(description="Save note", layout=w.Layout(width="110px")),
                                    "astrokit-note-save")
        self._w_note_save.on_click(self._on_save_note)
        self._w_note_status = w.HTML()
        self._w_note_preview = w.HTML()
        self._w_processing = classed(w.Select(options=[], rows=4, description="processing",
                                              layout=w.Layout(width="640px")), "astrokit-processing-select")
        self._w_processing.observe(self._on_processing, names="value")
        self._w_processing_detail = w.HTML()
        self._w_object = classed(w.Text(placeholder="e.g. M31 or NGC*", description="object",
                                        layout=w.Layout(width="240px")), "astrokit-search-object")
        self._w_band = classed(w.Text(placeholder="e.g. Ha", description="band", layout=w.Layout(width="180px")),
                               "astrokit-search-band")
        self._w_since = classed(w.Text(placeholder="YYYY-MM-DD", description="since", layout=w.Layout(width="200px")),
                                "astrokit-search-since")
        self._w_until = classed(w.Text(placeholder="YYYY-MM-DD", description="until", layout=w.Layout(width="200px")),
                                "astrokit-search-until")
        self._w_type = w.Dropdown(options=["any", "light", "dark", "flat", "bias"], value="any", description="type",
                                  layout=w.Layout(width="180px"))
        self._w_search = classed(w.Button(description="Search", button_style="primary",
                                          layout=w.Layout(width="90px")), "astrokit-search-button")
        self._w_search.on_click(self._on_search)
        self._w_message = w.HTML()
        self._w_results = w.HTML()
        self._w_frame = classed(w.Select(options=[], rows=5, description="frame", layout=w.Layout(width="640px")),
                                "astrokit-frame-select")
        self._w_frame.observe(self._on_frame, names="value")
        self._w_frame_error = w.HTML()
        self._w_thumbnail = w.HTML()
        self._w_header = classed(w.HTML(layout=w.Layout(max_height="360px", overflow="auto", width="640px")),
                                 "astrokit-frame-header-box")
        self._w_disk = w.HTML()
        self._w_backup = w.HTML()
        self._w_backup_refresh = classed(w.Button(description="Refresh", layout=w.Layout(width="90px")),
                                         "astrokit-backup-refresh")
        self._w_backup_refresh.on_click(self._on_backup)
        self._widget = classed(w.VBox([
            self._w_totals,
            w.HTML("<h3>Integration</h3>"), self._w_integration, self._w_growth,
            w.HTML("<h3>Sessions</h3>"), self._w_session, self._w_session_detail,
            w.HTML("<h3>Processing sessions</h3>"), self._w_processing, self._w_processing_detail,
            w.HTML("<h3>Notes</h3>"), self._w_note_title, w.HBox([self._w_note, self._w_note_save]),
            self._w_note_status, self._w_note_preview,
            w.HTML("<h3>Find files</h3>"),
            w.HBox([self._w_object, self._w_band, self._w_since, self._w_until, self._w_type, self._w_search]),
            self._w_message, self._w_results, self._w_frame, self._w_frame_error,
            w.HBox([self._w_thumbnail, self._w_header]),
            w.HTML("<h3>Disk use</h3>"), self._w_disk,
            w.HTML("<h3>Backup</h3>"), w.HBox([self._w_backup, self._w_backup_refresh])]), "astrokit-catalog")

    @property
    def widget(self):
        """The ipywidgets box to display."""
        return self._widget
