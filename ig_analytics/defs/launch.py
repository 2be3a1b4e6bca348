"""Run a job of the code location in this process, as a run that belongs to the code location.

`JobDefinition.execute_in_process` records runs without a repository origin: the UI cannot list them under their
job, leaves them out of the timeline and warns on "Re-execute" that the job "may be a different version". The
CLI's `sync` (and so the demo) instead creates the run with the same origins a run launched from the UI has (code
location ``ig_analytics``, repository ``__repository__``) and executes it here, with the jobs' in-process
executor: no code server, no run worker process, the same speed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Mapping

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.tags import PARTITION_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

DEFINITIONS_MODULE = "ig_analytics.definitions"
LOCATION_NAME = "ig_analytics"  # workspace.yaml
REPOSITORY_NAME = "__repository__"  # the name Dagster gives a module's Definitions


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    success: bool
    failures: list[str]


def _origins(job_name: str):
    recon_repo = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs")
    recon_job = recon_repo.get_reconstructable_job(job_name)
    location = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE),
        location_name=LOCATION_NAME,
    )
    remote = RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)
    return recon_job, remote


def execute_linked_run(instance: dg.DagsterInstance, job_name: str, *, run_config: Mapping[str, Any] | None = None,
                       tags: Mapping[str, str] | None = None, partition_key: str | None = None) -> RunOutcome:
    """Execute ``job_name`` now, in this process, as a run of the ``ig_analytics`` code location.

    A partition range is given with the ``dagster/asset_partition_range_start``/``_end`` tags, a single partition
    with ``partition_key``.
    """
    recon_job, remote_origin = _origins(job_name)
    job_def = recon_job.get_definition()
    run_tags = dict(tags or {})
    if partition_key is not None:
        run_tags[PARTITION_NAME_TAG] = partition_key
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=dict(run_config or {}),
        tags=run_tags,
        remote_job_origin=remote_origin,
        job_code_origin=recon_job.get_python_origin(),
    )
    result = execute_run(recon_job, run, instance, raise_on_error=False)
    failures = [] if result.success else [
        e.message for e in result.all_events if (e.is_step_failure or e.is_failure) and e.message]
    return RunOutcome(run.run_id, result.success, failures)
