"""The pipeline: ``run_<stage>`` functions, the papermill runner and the run registry."""

from astrokit.pipeline._cleanup import cleanup
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
    StageReport,
    plan_differences,
    quarantine_frame,
    resolve_model,
    run_alerts,
    run_difference,
    run_inference,
    run_ingest,
    run_photometry,
)

__all__ = ["STAGES", "RunConfig", "StageReport", "cleanup", "load_run_config", "new_run_id", "pipelines_dir",
           "plan_differences", "quarantine_frame", "resolve_model", "run_alerts", "run_difference",
           "run_inference", "run_ingest", "run_photometry", "run_pipeline", "store_lock"]
