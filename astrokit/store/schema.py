"""The columns of every astrokit table: name, Arrow type, unit and description, in one place.

This module is the single source of truth for the data model of ARCHITECTURE.md.
Stages build their output with `conform`, which orders and casts columns and
fills absent optional ones with nulls; readers get `empty_table` when nothing
has been written yet, so joins in DuckDB keep working.
"""

from dataclasses import dataclass

import pyarrow as pa

from astrokit.exceptions import AstrokitError

__all__ = ["TABLES", "Column", "arrow_schema", "conform", "empty_table", "describe"]


@dataclass(frozen=True)
class Column:
    """One column of a table."""

    name: str
    type: pa.DataType
    unit: str
    description: str


def _c(name, type_, unit, description):
    return Column(name, type_, unit, description)


S, F64, F32, I64, I32, B = pa.string(), pa.float64(), pa.float32(), pa.int64(), pa.int32(), pa.bool_()
TS, BIN = pa.timestamp("us", tz="UTC"), pa.binary()

TABLES = {
    "frames": [
        _c("exposure_id", S, "", "stable id: first 16 hex digits of the file's SHA-256, plus -HDU for extensions"),
        _c("path", S, "", "absolute path or s3:// URI of the file (bytes of a name that is not UTF-8 shown as \\xNN)"),
        _c("path_bytes", BIN, "", "the path's exact bytes when the file name is not valid UTF-8 (else null): "
           "what `astrokit.io.frame_path` opens"),
        _c("hdu", I32, "", "index of the image HDU in the file"),
        _c("sha256", S, "", "SHA-256 of the whole file"),
        _c("size_bytes", I64, "byte", "file size"),
        _c("mtime", F64, "s", "file modification time (Unix seconds)"),
        _c("status", S, "", "ok or quarantined"),
        _c("error", S, "", "why the file was quarantined (one line), else null"),
        _c("warnings", S, "", "what the header lacks or could not be read ('; '-separated, one line each), "
           "e.g. 'no observation time (DATE-OBS, MJD-OBS, JD ...)'; null when nothing is missing"),
        _c("format", S, "", "file format: fits, png, jpeg or tiff"),
        _c("data_kind", S, "", "what the HDU holds: image, spectrum, cube, table, or header (no data); later "
           "stages take only images (null in stores before it: images)"),
        _c("object", S, "", "OBJECT keyword, stripped"),
        _c("imagetyp", S, "", "light, dark, flat or bias (normalised from IMAGETYP/IMGTYPE/FRAME/OBSTYPE)"),
        _c("band", S, "", "filter name after the user's mapping (FILTER/FILTERS/FILTNAM)"),
        _c("exptime", F64, "s", "exposure time (EXPTIME/EXPOSURE)"),
        _c("date_obs", TS, "", "start of exposure, UTC"),
        _c("mjd", F64, "d", "modified Julian date of the start of exposure (UTC)"),
        _c("mjd_mid", F64, "d", "modified Julian date of mid-exposure (UTC): mjd + exptime / 2"),
        _c("telescope", S, "", "TELESCOP"),
        _c("instrument", S, "", "INSTRUME"),
        _c("gain", F64, "electron / adu", "GAIN/EGAIN/CCDGAIN/ATODGAIN"),
        _c("read_noise", F64, "electron", "RDNOISE/READNOIS/... read noise"),
        _c("saturation", F64, "adu", "SATURATE/SATURATION/... saturation level"),
        _c("airmass", F64, "", "AIRMASS/SECZ"),
        _c("ccd_temp", F64, "deg_C", "CCD-TEMP/CCDTEMP"),
        _c("xbinning", I32, "", "XBINNING"),
        _c("ybinning", I32, "", "YBINNING"),
        _c("naxis1", I32, "pix", "image width"),
        _c("naxis2", I32, "pix", "image height"),
        _c("ra_center", F64, "deg", "RA of the image centre from the WCS, else null"),
        _c("dec_center", F64, "deg", "Dec of the image centre from the WCS, else null"),
        _c("pixel_scale", F64, "arcsec / pix", "pixel scale from the WCS, else null"),
        _c("has_wcs", B, "", "whether a celestial WCS was found"),
        _c("wcs_source", S, "", "where the WCS came from: header, solved (astrometry.net), aligned (asterisms "
           "to an overlapping frame with a WCS) or none"),
        _c("wcs_rms", F64, "arcsec", "RMS residual of the plate solve or alignment (null for a header WCS)"),
        _c("wcs_header", S, "", "the solved or aligned WCS as FITS header cards (TAN-SIP), read by "
           "astrokit.pipeline.science_image; null for a header WCS or none"),
        _c("wcs_reference", S, "", "exposure_id of the frame whose WCS an aligned frame inherited, else null"),
        _c("corners", pa.list_(F64), "deg", "WCS footprint: [ra, dec] of pixel corners (0,0), (nx-1,0), "
           "(nx-1,ny-1), (0,ny-1), 8 values; null without WCS"),
        _c("night", S, "", "observing night (YYYY-MM-DD of the evening, noon-to-noon at the site)"),
        _c("session_id", S, "", "night x object x telescope key (light frames)"),
        _c("ingested_at", TS, "", "when this row was written"),
    ],
    "sessions": [
        _c("session_id", S, "", "night x object x telescope key"),
        _c("night", S, "", "observing night (YYYY-MM-DD of the evening, noon-to-noon at the site)"),
        _c("object", S, "", "target"),
        _c("telescope", S, "", "telescope"),
        _c("instrument", S, "", "camera (of one of the frames)"),
        _c("bands", S, "", "bands observed, comma-separated"),
        _c("n_frames", I64, "", "number of light frames"),
        _c("integration_s", F64, "s", "summed exposure time of the light frames"),
        _c("start_utc", TS, "", "start of the first exposure"),
        _c("end_utc", TS, "", "start of the last exposure"),
    ],
    "calibrations": [
        _c("light_id", S, "", "exposure_id of the light frame"),
        _c("calib_id", S, "", "exposure_id of a calibration frame that applies to it"),
        _c("kind", S, "", "dark, flat or bias"),
        _c("light_path", S, "", "path of the light frame"),
        _c("calib_path", S, "", "path of the calibration frame"),
        _c("delta_exptime", F64, "s", "exptime(calibration) - exptime(light)"),
        _c("delta_temp", F64, "deg_C", "ccd_temp(calibration) - ccd_temp(light), null when either is unknown"),
        _c("delta_days", F64, "d", "mjd(calibration) - mjd(light)"),
    ],
    "sources": [
        _c("exposure_id", S, "", "frame the source was detected on"),
        _c("source_id", I64, "", "index of the source in its frame (0-based)"),
        _c("x", F64, "pix", "centroid column, 0-based"),
        _c("y", F64, "pix", "centroid row, 0-based"),
        _c("ra", F64, "deg", "right ascension from the frame's WCS (null without WCS)"),
        _c("dec", F64, "deg", "declination from the frame's WCS (null without WCS)"),
        _c("flux", F64, "adu", "aperture flux minus the local annulus background"),
        _c("flux_err", F64, "adu", "1-sigma error of flux (background rms and Poisson term with the gain)"),
        _c("mag", F64, "mag", "instrumental magnitude -2.5 log10(flux) + zero_point (zero_point 0 when unknown)"),
        _c("mag_err", F64, "mag", "1-sigma error of mag"),
        _c("background", F64, "adu / pix", "sky background per pixel under the source: the background map at "
           "(x, y), plus the sigma-clipped annulus median of the map-subtracted image when an annulus is used"),
        _c("fwhm", F64, "pix", "full width at half maximum, 2 sqrt(2 ln 2) x sqrt((a^2 + b^2)/2)"),
        _c("a", F64, "pix", "semi-major axis (second moments)"),
        _c("b", F64, "pix", "semi-minor axis (second moments)"),
        _c("theta", F64, "rad", "position angle of the major axis, from +x towards +y"),
        _c("snr", F64, "", "flux / flux_err"),
        _c("flags", I32, "", "sep extraction flags OR aperture flags (see astrokit.photometry.FLAGS)"),
        _c("aperture_radius", F64, "pix", "radius of the circular aperture"),
        _c("xwin", F64, "pix", "windowed centroid column, 0-based (SExtractor XWIN_IMAGE - 1)"),
        _c("ywin", F64, "pix", "windowed centroid row, 0-based (SExtractor YWIN_IMAGE - 1)"),
        _c("flux_auto", F64, "adu", "Kron (AUTO) flux in an ellipse of 2.5 x kron_radius (SExtractor FLUX_AUTO)"),
        _c("flux_auto_err", F64, "adu", "1-sigma error of flux_auto"),
        _c("kron_radius", F64, "", "Kron radius in units of a and b (SExtractor KRON_RADIUS / 2.5)"),
        _c("peak", F64, "adu", "peak pixel value above the background"),
        _c("npix", I64, "", "pixels above the detection threshold"),
    ],
    "differences": [
        _c("difference_id", S, "", "hash of science, reference, method and parameters"),
        _c("science_id", S, "", "exposure_id of the science (new) image"),
        _c("reference_id", S, "", "exposure_id of the reference image"),
        _c("method", S, "", "zogy"),
        _c("n_candidates", I64, "", "candidates found"),
        _c("diff_noise", F64, "adu", "robust standard deviation of D"),
        _c("psf_fwhm_science", F64, "pix", "PSF FWHM of the science image"),
        _c("psf_fwhm_reference", F64, "pix", "PSF FWHM of the reference image"),
        _c("flux_scale", F64, "", "science / reference flux ratio from matched stars"),
        _c("alignment_rms", F64, "pix", "rms offset of matched stars after alignment"),
        _c("threshold", F64, "", "|S_corr| detection threshold"),
        _c("zero_point", F64, "mag", "zero point of the science image, used by the candidates' magnitudes "
                                     "(0: instrumental)"),
        _c("difference_path", S, "", "artifact path of D (FITS)"),
        _c("s_corr_path", S, "", "artifact path of S_corr (FITS)"),
        _c("created_at", TS, "", "when the difference was made"),
        _c("subimages", S, "", "ZOGY sub-image grid 'n_y x n_x' (a PSF per sub-image, for a PSF varying "
                               "across the field; DifferenceResult.subimages); null: one PSF for the frame"),
    ],
    "candidates": [
        _c("candidate_id", S, "", "difference_id:index, or alert:<candid> for alerts"),
        _c("difference_id", S, "", "difference it comes from (null for alerts)"),
        _c("alert_id", I64, "", "the alert packet's candid (alerts only)"),
        _c("object_id", S, "", "object (the survey's objectId for alerts)"),
        _c("x", F64, "pix", "position on the science image, 0-based"),
        _c("y", F64, "pix", "position on the science image, 0-based"),
        _c("ra", F64, "deg", "right ascension"),
        _c("dec", F64, "deg", "declination"),
        _c("mjd", F64, "d", "MJD of the science exposure"),
        _c("band", S, "", "filter"),
        _c("s_corr", F64, "", "ZOGY S_corr at the peak (signed, in sigma)"),
        _c("flux", F64, "adu", "PSF flux on the difference image"),
        _c("flux_err", F64, "adu", "1-sigma error of flux"),
        _c("mag", F64, "mag", "magnitude (magpsf for alerts; instrumental for pipeline candidates)"),
        _c("mag_err", F64, "mag", "1-sigma error of mag"),
        _c("is_positive", B, "", "brighter in the science image than in the reference"),
        _c("flags", I32, "", "bit flags (see astrokit.differencing.CANDIDATE_FLAGS)"),
        _c("origin", S, "", "pipeline, alert or injected"),
        _c("survey_rb", F64, "", "the survey's own real-bogus score (ZTF rb), alerts only"),
        _c("survey_drb", F64, "", "the survey's deep real-bogus score (ZTF drb, braai), alerts only"),
        _c("cutout_science", BIN, "", "63x63 float32 science stamp, .npy bytes (astrokit.io.decode_cutout)"),
        _c("cutout_reference", BIN, "", "63x63 float32 reference stamp, .npy bytes"),
        _c("cutout_difference", BIN, "", "63x63 float32 difference stamp, .npy bytes"),
    ],
    "scores": [
        _c("candidate_id", S, "", "scored candidate"),
        _c("model_name", S, "", "model name in the registry (real_bogus)"),
        _c("model_version", S, "", "model version"),
        _c("real_bogus", F64, "", "probability that the candidate is real, 0..1"),
        _c("scored_at", TS, "", "when it was scored"),
    ],
    "labels": [
        _c("label_id", S, "", "unique id of the decision event"),
        _c("candidate_id", S, "", "labelled candidate"),
        _c("label", S, "", "real, bogus, unsure, skip, undo (a correction: note = 'undoes <label_id>'), or "
           "comment (a remark in note, no decision)"),
        _c("user", S, "", "who decided"),
        _c("created_at", TS, "", "when"),
        _c("note", S, "", "optional free text"),
    ],
    "tracklets": [
        _c("tracklet_id", S, "", "tracklet id"),
        _c("candidate_ids", pa.list_(S), "", "linked candidates"),
        _c("rate", F64, "arcsec / h", "angular rate"),
        _c("position_angle", F64, "deg", "direction of motion, east of north"),
        _c("n_epochs", I64, "", "number of epochs linked"),
        _c("method", S, "", "fast (candidate linking) or shift_and_stack (KBMOD-like likelihood search)"),
        _c("field_key", S, "", "unit of work: object x band x telescope x night (a rerun replaces its tracklets)"),
        _c("night", S, "", "observing night of the epochs"),
        _c("mjd_ref", F64, "d", "reference time of ra, dec"),
        _c("ra", F64, "deg", "right ascension at mjd_ref"),
        _c("dec", F64, "deg", "declination at mjd_ref"),
        _c("ra_rate", F64, "arcsec / h", "rate along RA (dRA/dt cos dec), east positive"),
        _c("dec_rate", F64, "arcsec / h", "rate along Dec, north positive"),
        _c("rate_err", F64, "arcsec / h", "1-sigma error of rate"),
        _c("position_angle_err", F64, "deg", "1-sigma error of position_angle"),
        _c("mjds", pa.list_(F64), "d", "epochs of the linked candidates"),
        _c("magnitudes", pa.list_(F64), "mag", "magnitudes of the linked candidates"),
        _c("mag", F64, "mag", "mean magnitude (fast) or magnitude of the stacked flux (shift_and_stack)"),
        _c("residuals", pa.list_(F64), "arcsec", "distance of each detection from the fitted line"),
        _c("rms_residual", F64, "arcsec", "rms of residuals"),
        _c("chi2", F64, "", "chi-square of the straight-line fit (fast)"),
        _c("dof", I64, "", "degrees of freedom of the fit (fast)"),
        _c("likelihood", F64, "", "stacked signal-to-noise ratio along the trajectory (shift-and-stack)"),
        _c("confirmed", B, "", "fast tracklet whose trajectory the shift-and-stack search also found, or a "
           "shift-and-stack track that passes through candidates"),
        _c("created_at", TS, "", "when the row was written"),
    ],
    "saved_queries": [
        _c("query_id", S, "", "unique id of the event"),
        _c("name", S, "", "name of the saved scanner query, shared by the team (the latest event of a name wins)"),
        _c("filters", S, "", "the scanner filters as JSON (astrokit.widgets.validate_filters); null: deleted"),
        _c("user", S, "", "who saved it"),
        _c("created_at", TS, "", "when"),
    ],
    "notifications": [
        _c("notification_id", S, "", "unique id of the attempt"),
        _c("candidate_id", S, "", "candidate posted"),
        _c("rule_id", S, "", "hash of the rule and the URL"),
        _c("rule", S, "", "the rule, as written"),
        _c("url", S, "", "webhook endpoint"),
        _c("status", S, "", "sent or failed"),
        _c("error", S, "", "why it failed, one line"),
        _c("sent_at", TS, "", "when"),
    ],
    "calibration_masters": [
        _c("master_id", S, "", "hash of kind, input exposure_ids, upstream masters and parameters"),
        _c("kind", S, "", "bias, dark or flat"),
        _c("path", S, "", "artifact path of the master frame (FITS, relative to the store)"),
        _c("input_ids", pa.list_(S), "", "exposure_ids of the frames combined"),
        _c("n_frames", I64, "", "number of frames combined"),
        _c("exptime", F64, "s", "exposure time of a master dark (scaled to the longest dark), else null"),
        _c("bias_id", S, "", "master bias subtracted before combining (darks, flats), else null"),
        _c("dark_id", S, "", "master dark subtracted before combining (flats), else null"),
        _c("sigma", F64, "", "sigma-clipping threshold of the combine (robust standard deviations)"),
        _c("created_at", TS, "", "when the master was built"),
    ],
    "calibrated_frames": [
        _c("exposure_id", S, "", "the light frame"),
        _c("path", S, "", "path of the raw light frame"),
        _c("calibrated_path", S, "", "artifact path of the calibrated frame (FITS), null when passed through"),
        _c("status", S, "", "calibrated, passthrough (no calibration frames) or failed"),
        _c("steps", S, "", "steps applied, comma-separated (bias, dark, flat, cosmic_rays)"),
        _c("master_bias_id", S, "", "master bias applied (calibration_masters.master_id), else null"),
        _c("master_dark_id", S, "", "master dark applied, else null"),
        _c("master_flat_id", S, "", "master flat applied, else null"),
        _c("dark_scale", F64, "", "factor applied to the master dark (t_light / t_dark), else null"),
        _c("n_cosmic_rays", I64, "", "pixels cleaned as cosmic rays"),
        _c("reason", S, "", "why it failed or passed through (one line)"),
        _c("calibration_key", S, "", "hash of the light frame, its calibration frames and the parameters"),
        _c("calibrated_at", TS, "", "when this row was written"),
    ],
    "objects": [
        _c("object_id", S, "", "IAU-style name from the first detection's position (AK Jhhmmss.ss+ddmmss.s), "
           "or the survey's objectId for alerts"),
        _c("ra", F64, "deg", "mean right ascension of the detections"),
        _c("dec", F64, "deg", "mean declination of the detections"),
        _c("position_rms", F64, "arcsec", "rms distance of the detections from the mean position"),
        _c("n_detections", I64, "", "candidates associated"),
        _c("n_epochs", I64, "", "distinct science exposures with a detection"),
        _c("n_forced", I64, "", "light-curve points measured by forced photometry (no detection)"),
        _c("bands", S, "", "bands with a detection, comma-separated"),
        _c("first_mjd", F64, "d", "MJD of the first detection"),
        _c("last_mjd", F64, "d", "MJD of the last detection"),
        _c("peak_mag", F64, "mag", "brightest magnitude among the detections"),
        _c("peak_mjd", F64, "d", "MJD of the brightest detection"),
        _c("max_abs_s_corr", F64, "", "largest |S_corr| among the detections"),
        _c("max_real_bogus", F64, "", "highest real_bogus score of its candidates (any model), null if unscored"),
        _c("origin", S, "", "pipeline or alert"),
        _c("updated_at", TS, "", "when this row was written"),
    ],
    "light_curves": [
        _c("object_id", S, "", "object (objects.object_id)"),
        _c("difference_id", S, "", "difference image measured (null for alerts)"),
        _c("exposure_id", S, "", "science exposure of the difference (null for alerts)"),
        _c("candidate_id", S, "", "the detection at this epoch, null for a forced measurement"),
        _c("mjd", F64, "d", "MJD of the science exposure"),
        _c("band", S, "", "filter"),
        _c("x", F64, "pix", "position measured on the difference image, 0-based"),
        _c("y", F64, "pix", "position measured on the difference image, 0-based"),
        _c("flux", F64, "adu", "PSF flux of the change on the difference image (science ADU; negative: fainter)"),
        _c("flux_err", F64, "adu", "1-sigma error of flux"),
        _c("snr", F64, "", "flux / flux_err"),
        _c("mag", F64, "mag", "magnitude of |flux| when detected or snr >= 3, else null"),
        _c("mag_err", F64, "mag", "1-sigma error of mag"),
        _c("limiting_mag", F64, "mag", "5-sigma limiting magnitude at the position, -2.5 log10(5 flux_err) + zp"),
        _c("detected", B, "", "a candidate of this object lies on this difference image"),
        _c("forced", B, "", "flux from forced PSF photometry at the object's position"),
        _c("origin", S, "", "pipeline or alert"),
    ],
    "difference_psfs": [
        _c("difference_id", S, "", "difference image"),
        _c("psf_path", S, "", "artifact path of P_D, the PSF of D (FITS, sum 1, centred)"),
        _c("f_d", F64, "", "flux zero point F_D of D (ZOGY eq. 15)"),
        _c("f_s", F64, "", "response F_S of S to a unit-flux point source (ZOGY eq. 42)"),
        _c("flux_science", F64, "", "F_n: the science/reference flux scale used"),
        _c("zero_point", F64, "mag", "zero point of the science image (header; 0 when unknown), for magnitudes"),
        _c("forced_flux_err", F64, "adu", "1-sigma error of a forced PSF flux on empty sky (science ADU), "
           "robust scatter of forced measurements at random blank positions"),
        _c("created_at", TS, "", "when it was computed"),
    ],
    "runs": [
        _c("run_id", S, "", "run id (UTC timestamp + random suffix)"),
        _c("stage", S, "", "pipeline stage"),
        _c("parameters", S, "", "parameters passed to the notebook (JSON)"),
        _c("status", S, "", "ok, failed, running (in progress), or interrupted (its process died; recorded by "
           "the next run)"),
        _c("error", S, "", "error of a failed or interrupted stage, one line"),
        _c("started_at", TS, "", "start"),
        _c("finished_at", TS, "", "end"),
        _c("notebook_path", S, "", "executed notebook kept as provenance"),
        _c("astrokit_version", S, "", "astrokit version"),
        _c("n_processed", I64, "", "units (frames, pairs, files) computed by the stage, from its report"),
        _c("n_skipped", I64, "", "units skipped because their inputs and parameters were unchanged (resumption)"),
        _c("n_failed", I64, "", "units that failed (recorded, the others went on)"),
        _c("failures", S, "", "the failed units and their one-line reasons (JSON list of {unit, reason})"),
    ],
    "fingerprints": [
        _c("stage", S, "", "pipeline stage (photometry, difference, ...)"),
        _c("unit", S, "", "unit of work: exposure_id (photometry) or difference_id (difference)"),
        _c("fingerprint", S, "", "SHA-256 of the unit's input hashes, parameters and astrokit version"),
        _c("parameters", S, "", "the parameters fingerprinted (JSON)"),
        _c("finished_at", TS, "", "when the unit's results were written"),
    ],
    "processing_sessions": [
        _c("processing_id", S, "", "the session's name as a folder name (DIR/<processing_id>/)"),
        _c("name", S, "", "name as given, e.g. 'M31 LRGB'"),
        _c("target", S, "", "target (default: the object of its light frames)"),
        _c("folder", S, "", "absolute path of the session folder (calibration/ intermediate/ final/)"),
        _c("notes_path", S, "", "its Markdown note (Obsidian-compatible)"),
        _c("created_at", TS, "", "when it was created"),
        _c("updated_at", TS, "", "when its frames last changed"),
    ],
    "processing_frames": [
        _c("processing_id", S, "", "processing session"),
        _c("exposure_id", S, "", "a catalogued frame (frames.exposure_id)"),
        _c("path", S, "", "its file"),
        _c("role", S, "", "light, bias, dark or flat"),
        _c("origin", S, "", "chosen (by query or id), proposed (calibration matching) or override (given instead)"),
        _c("added_at", TS, "", "when it joined the session"),
    ],
    "processing_files": [
        _c("processing_id", S, "", "processing session whose folder holds the file"),
        _c("path", S, "", "absolute path of the file"),
        _c("role", S, "", "calibration, intermediate or final (the subfolder), else other"),
        _c("format", S, "", "fits, xisf, tiff, png, jpeg or other (by content, else by name)"),
        _c("size_bytes", I64, "byte", "file size"),
        _c("mtime", F64, "s", "modification time (Unix seconds)"),
        _c("sha256", S, "", "SHA-256 of the file"),
        _c("object", S, "", "OBJECT of a FITS or XISF header, else null"),
        _c("imagetyp", S, "", "IMAGETYP of a FITS or XISF header, else null"),
        _c("naxis1", I32, "pix", "image width (FITS NAXIS1, XISF geometry), else null"),
        _c("naxis2", I32, "pix", "image height, else null"),
        _c("error", S, "", "why the header could not be read (one line), else null"),
        _c("catalogued_at", TS, "", "when this row was written"),
    ],
    "session_notes": [
        _c("session_id", S, "", "imaging session (sessions.session_id) or processing session (processing_id)"),
        _c("kind", S, "", "imaging or processing"),
        _c("path", S, "", "the note's Markdown file"),
        _c("text", S, "", "the note's text as last saved"),
        _c("saved_at", TS, "", "when it was saved"),
    ],
    "thumbnails": [
        _c("exposure_id", S, "", "frame (frames.exposure_id)"),
        _c("sha256", S, "", "SHA-256 of the frame's file when the thumbnail was made"),
        _c("path", S, "", "artifact key of the PNG (relative to the store)"),
        _c("width", I32, "pix", "PNG width"),
        _c("height", I32, "pix", "PNG height"),
        _c("created_at", TS, "", "when it was made"),
    ],
    "candidate_objects": [
        _c("candidate_id", S, "", "a pipeline candidate"),
        _c("object_id", S, "", "the object it belongs to (objects stage); joined into candidates.object_id"),
        _c("assigned_at", TS, "", "when the objects stage assigned it"),
    ],
    "candidate_flags": [
        _c("candidate_id", S, "", "a candidate"),
        _c("flags", I32, "", "bits set by a later stage (32: streak, by link); OR-ed into candidates.flags"),
        _c("set_at", TS, "", "when they were set"),
    ],
}

#: Columns of a table that later stages own: each lives in a table of its own, with one writer, and readers
#: (`Store.read`, `Store.sql`, ``astrokit.duckdb``) see it joined in on ``key``. ``"replace"``: the overlay's
#: value when it has one, else the table's own (alerts keep the survey's objectId); ``"or"``: bits OR-ed in.
OVERLAYS = {
    "candidates": {"key": "candidate_id",
                   "columns": {"object_id": ("candidate_objects", "replace"), "flags": ("candidate_flags", "or")}},
}


def _columns(table):
    try:
        return TABLES[table]
    except KeyError:
        msg = f"unknown table {table!r}; the tables are {sorted(TABLES)}"
        raise AstrokitError(msg) from None


def arrow_schema(table):
    """Return the `pyarrow.Schema` of ``table``, with units and descriptions as field metadata.

    Parameters
    ----------
    table : str
        Table name.

    Returns
    -------
    pyarrow.Schema

    Raises
    ------
    AstrokitError
        If the table is unknown.
    """
    return pa.schema(
        [pa.field(c.name, c.type, metadata={"unit": c.unit, "description": c.description}) for c in _columns(table)]
    )


def empty_table(table):
    """Return a zero-row `pyarrow.Table` with the full schema of ``table``.

    Parameters
    ----------
    table : str
        Table name.

    Returns
    -------
    pyarrow.Table
    """
    return arrow_schema(table).empty_table()


def conform(table, data):
    """Cast ``data`` to the schema of ``table``: order columns, cast types, add absent columns as nulls.

    Parameters
    ----------
    table : str
        Table name (a key of `TABLES`).
    data : pyarrow.Table, pandas.DataFrame, list of dict or dict of lists
        Rows to conform.

    Returns
    -------
    pyarrow.Table
        With exactly the columns of the schema, in order.

    Raises
    ------
    AstrokitError
        If ``data`` has columns the schema does not know, or a column cannot be cast.
    """
    schema = arrow_schema(table)
    if isinstance(data, list):
        # from_pylist would take the columns of the first row only: use the union of every row's keys
        names = list(dict.fromkeys(k for row in data for k in row))
        extra = set(names) - set(schema.names)
        if extra:
            msg = f"columns {sorted(extra)} are not in the {table!r} schema (astrokit/store/schema.py)"
            raise AstrokitError(msg)
        data = pa.table({n: [row.get(n) for row in data] for n in names}) if names else schema.empty_table()
    elif isinstance(data, dict):
        data = pa.table(data)
    elif not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data, preserve_index=False)
    extra = set(data.column_names) - set(schema.names)
    if extra:
        msg = f"columns {sorted(extra)} are not in the {table!r} schema (astrokit/store/schema.py)"
        raise AstrokitError(msg)
    arrays = []
    for field in schema:
        if field.name in data.column_names:
            col = data.column(field.name)
            try:
                col = col.cast(field.type) if col.type != field.type else col
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                msg = f"column {table}.{field.name}: cannot cast {col.type} to {field.type}: {exc}"
                raise AstrokitError(msg) from exc
        else:
            col = pa.nulls(data.num_rows, field.type)
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=schema)


def describe(table):
    """Return the documentation of ``table`` as a list of (name, type, unit, description) tuples.

    Parameters
    ----------
    table : str
        Table name.

    Returns
    -------
    list of tuple
    """
    return [(c.name, str(c.type), c.unit, c.description) for c in _columns(table)]
