"""The pipeline: ``run_<stage>`` functions, the papermill runner and the run registry."""

from astrokit.pipeline._cleanup import cleanup
from astrokit.pipeline._core import REPORT_MIMETYPE, StageReport, Unit, fingerprint, record_run, run_units
from astrokit.pipeline._dask import WORKER_ENV, dask_client, map_units
from astrokit.pipeline._runner import (
    STAGES,
    RunConfig,
    load_run_config,
    new_run_id,
    pipelines_dir,
    run_pipeline,
    store_lock,
)
from astrokit.pipeline._stages import (
    plan_differences,
    quarantine_frame,
    resolve_model,
    run_alerts,
    run_difference,
    run_inference,
    run_ingest,
    run_photometry,
)

__all__ = ["REPORT_MIMETYPE", "STAGES", "WORKER_ENV", "RunConfig", "StageReport", "Unit", "record_run", "run_units",
           "cleanup", "dask_client", "fingerprint", "map_units",
           "load_run_config", "new_run_id", "pipelines_dir", "plan_differences", "quarantine_frame", "resolve_model",
           "run_alerts", "run_difference", "run_inference", "run_ingest", "run_photometry", "run_pipeline",
           "store_lock"]

from astrokit.pipeline._calibrate import run_calibrate, science_image  # noqa: E402  (issue 5: calibrate stage)
from astrokit.pipeline._objects import (  # noqa: E402  (issue 5)
    difference_psf,
    difference_psf_payload,
    run_objects,
    store_difference_psf,
    write_difference_psf,
)

__all__ += ["difference_psf", "difference_psf_payload", "run_calibrate", "run_objects", "science_image",
            "store_difference_psf", "write_difference_psf"]

from astrokit.pipeline._link import plan_link, run_link  # noqa: E402  (issue 9: link stage)
from astrokit.pipeline._params import (  # noqa: E402  (issue 16: declared stage parameters)
    STAGE_PARAMETERS,
    ParameterError,
    StageParameter,
    describe_stage,
    parameters_cell,
    validate_parameters,
)

__all__ += ["plan_link", "run_link", "STAGE_PARAMETERS", "ParameterError", "StageParameter", "describe_stage",
            "parameters_cell", "validate_parameters"]

from astrokit.pipeline._astrometry import frame_wcs, run_astrometry  # noqa: E402  (issue 14: astrometry stage)

__all__ += ["frame_wcs", "run_astrometry"]

from astrokit.pipeline._search import run_at_position  # noqa: E402  (astrokit search --run)

__all__ += ["run_at_position"]
