"""The one door to Dagster's private internals (``dagster._...``).

Dagster is pinned exactly (``pyproject.toml``, ``constraints.txt``) because of the names below. Every private name
the product uses is imported here and nowhere else, each with why it is needed and the public alternative that
was tried. An upgrade that moves one fails at import with a sentence naming it (``_private``), and
``ig_analytics_tests/test_dagster_internals.py`` lists them: run that test first after raising the pin.

Public names replaced the others: ``dg.AssetCheckEvaluation``, ``dg.EventLogEntry``, ``dg.DagsterEventType``,
``dg.serialize_value``; a step's error is read by its attributes (no ``SerializableErrorInfo`` type).
"""

from __future__ import annotations

import importlib
from typing import Any

import dagster as dg

# "module.name" -> (who uses it, why, the public alternative tried)
PRIVATE_NAMES: dict[str, tuple[str, str, str]] = {
    "dagster._core.storage.tags.ASSET_PARTITION_RANGE_START_TAG": (
        "defs/jobs.py, cli/sync_command.py", "a run over a range of daily partitions (one run, 29-day API windows)",
        "RunRequest(partition_key_range=...) exists for sensors/schedules only; execute_in_process cannot take a "
        "range and the run must belong to the code location (defs/launch.py)"),
    "dagster._core.storage.tags.ASSET_PARTITION_RANGE_END_TAG": (
        "defs/jobs.py, cli/sync_command.py", "the other end of that range", "as above"),
    "dagster._core.storage.tags.PARTITION_NAME_TAG": (
        "defs/launch.py", "the partition of a run the CLI creates itself", "the literal 'dagster/partition' (no "
        "public constant in 1.13)"),
    "dagster._core.definitions.reconstruct.ReconstructableRepository": (
        "defs/launch.py", "a run with the code location's origin, so the UI lists CLI runs under their job",
        "JobDefinition.execute_in_process records runs without an origin (UI: 'may be a different version')"),
    "dagster._core.execution.api.execute_run": (
        "defs/launch.py", "execute that run in this process", "execute_in_process (no origin, see above)"),
    "dagster._core.remote_origin.InProcessCodeLocationOrigin": ("defs/launch.py", "the run's origin", "none"),
    "dagster._core.remote_origin.RemoteJobOrigin": ("defs/launch.py", "the run's origin", "none"),
    "dagster._core.remote_origin.RemoteRepositoryOrigin": ("defs/launch.py", "the run's origin", "none"),
    "dagster._core.types.loadable_target_origin.LoadableTargetOrigin": (
        "defs/launch.py", "the run's origin: the definitions module", "none"),
    "dagster._core.definitions.asset_checks.asset_check_evaluation.AssetCheckEvaluationTargetMaterializationData": (
        "defs/check_ranges.py", "tie each partition's check evaluation to that partition's materialization, so the "
        "UI shows a check per partition of a range run", "AssetCheckResult has no target-materialization field"),
    "dagster._core.events.ASSET_EVENTS": ("defs/event_batches.py", "which events carry asset rows", "none"),
    "dagster._core.events.ASSET_CHECK_EVENTS": ("defs/event_batches.py", "which events carry check rows", "none"),
    "dagster._core.storage.asset_check_execution_record.AssetCheckExecutionRecordStatus": (
        "defs/event_batches.py", "the status column of asset_check_executions", "none"),
    "dagster._core.storage.event_log.schema.AssetCheckExecutionsTable": (
        "defs/event_batches.py", "batched writes of check executions (a one-account sync: ~650 events)",
        "DAGSTER_EVENT_BATCH_SIZE batches materializations only"),
    "dagster._core.storage.event_log.schema.SqlEventLogStorageTable": (
        "defs/event_batches.py", "batched writes of event rows", "as above"),
    "dagster._check.CheckError": (
        "defs/postgres_io.py", "a run tagged with a partition the asset does not have yet (a GraphQL launch of the "
        "next hour) surfaces only as this error from asset_partitions_time_window; caught to say so in a sentence",
        "has_partition_key on the run's key (right for outputs, wrong for inputs whose partitions map from another "
        "definition); asset_partition_key_range raises the same error"),
    "dagster._grpc.client.DagsterGrpcClient": (
        "cli/runtime.py", "ask the code server whether it has loaded the definitions before starting the UI",
        "`dagster api grpc-health-check` (a subprocess per poll, ~1 s of imports each)"),
}


def _private(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        used_by, why, _ = PRIVATE_NAMES[dotted]
        raise ImportError(
            f"Dagster {dg.__version__} has no {dotted}, which ig_analytics uses in {used_by} ({why}); see "
            "ig_analytics/defs/dagster_internals.py for the public alternative tried, or pin the Dagster version "
            "of constraints.txt") from exc


ASSET_PARTITION_RANGE_START_TAG: str = _private("dagster._core.storage.tags.ASSET_PARTITION_RANGE_START_TAG")
ASSET_PARTITION_RANGE_END_TAG: str = _private("dagster._core.storage.tags.ASSET_PARTITION_RANGE_END_TAG")
PARTITION_NAME_TAG: str = _private("dagster._core.storage.tags.PARTITION_NAME_TAG")

ReconstructableRepository = _private("dagster._core.definitions.reconstruct.ReconstructableRepository")
execute_run = _private("dagster._core.execution.api.execute_run")
InProcessCodeLocationOrigin = _private("dagster._core.remote_origin.InProcessCodeLocationOrigin")
RemoteJobOrigin = _private("dagster._core.remote_origin.RemoteJobOrigin")
RemoteRepositoryOrigin = _private("dagster._core.remote_origin.RemoteRepositoryOrigin")
LoadableTargetOrigin = _private("dagster._core.types.loadable_target_origin.LoadableTargetOrigin")

CheckError: type[Exception] = _private("dagster._check.CheckError")

AssetCheckEvaluationTargetMaterializationData = _private(
    "dagster._core.definitions.asset_checks.asset_check_evaluation.AssetCheckEvaluationTargetMaterializationData")

ASSET_EVENTS = _private("dagster._core.events.ASSET_EVENTS")
ASSET_CHECK_EVENTS = _private("dagster._core.events.ASSET_CHECK_EVENTS")
AssetCheckExecutionRecordStatus = _private(
    "dagster._core.storage.asset_check_execution_record.AssetCheckExecutionRecordStatus")
AssetCheckExecutionsTable = _private("dagster._core.storage.event_log.schema.AssetCheckExecutionsTable")
SqlEventLogStorageTable = _private("dagster._core.storage.event_log.schema.SqlEventLogStorageTable")



def grpc_client(host: str, port: int) -> Any:
    """Dagster's gRPC client of a code server (imported when needed: grpc costs the other commands' start-up)."""
    return _private("dagster._grpc.client.DagsterGrpcClient")(port=port, host=host)


def ensure_pool(instance: dg.DagsterInstance, pool: str) -> None:
    """Create ``pool``'s row with dagster.yaml's default limit unless it exists. The first steps of several runs
    claiming a pool that has no row yet race to create it, and all but one fail on a unique violation of
    ``concurrency_limits`` (seen with 4 shard runs on a new instance: benchmarks/tick.py); the schedules that
    launch shard runs call this first, alone. A storage method, not an exported name; public alternative tried:
    ``dagster instance concurrency set`` (a fixed limit that would override dagster.yaml's default)."""
    storage = instance.event_log_storage
    if pool not in storage.get_concurrency_keys():
        storage.initialize_concurrency_limit_to_default(pool)
