"""deploy/helm/values.yaml checked without a cluster.

- The K8s run launcher config is rendered the way the official chart's ``dagsterYaml.runLauncher.k8s`` template
  renders it, validated against the config schema of ``dagster-k8s`` (the version matched to the pinned Dagster,
  a test-only dependency), and turned into the Kubernetes Job a run would get (with the user deployment's
  container context, as ``includeConfigInLaunchedRuns`` passes it): image, secrets, env and resources must land.
- The instance sections the chart renders (run queue, pools, run monitoring) validate against Dagster's instance
  schema and carry the same limits as the Compose deployment.
- The user deployment's command (``dagster api grpc`` with its ``dagsterApiGrpcArgs``) serves the definitions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from ig_analytics_tests.procs import child, free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
COMPOSE_INSTANCE = yaml.safe_load((ROOT / "deploy" / "docker" / "dagster.yaml").read_text())
DAGSTER_HOME = "/opt/dagster/dagster_home"  # the chart's global.dagsterHome default
NAMESPACE = "dagster"

dagster_k8s = pytest.importorskip(
    "dagster_k8s", reason="test-only dependency: pip install -e '.[dev]' -c constraints.txt")


def _names(entries) -> list[str]:
    return [e["name"] for e in entries or [] if "name" in e]


def render_k8s_run_launcher(values: dict) -> dict:
    """The chart's dagsterYaml.runLauncher.k8s template, in Python (camelCase values -> snake_case config)."""
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {
        "load_incluster_config": k8s.get("loadInclusterConfig", True),
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s.get("imagePullPolicy", "Always"),
        "service_account_name": "dagster",
        "dagster_home": DAGSTER_HOME,
        "instance_config_map": "dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    if "image" in k8s:
        config["job_image"] = f'{k8s["image"]["repository"]}:{k8s["image"]["tag"]}'
    for key, field in (("envConfigMaps", "env_config_maps"), ("envSecrets", "env_secrets")):
        if k8s.get(key):
            config[field] = _names(k8s[key])
    for key, field in (("envVars", "env_vars"), ("volumeMounts", "volume_mounts"), ("volumes", "volumes"),
                       ("labels", "labels"), ("resources", "resources"), ("schedulerName", "scheduler_name"),
                       ("securityContext", "security_context")):
        if k8s.get(key):
            config[field] = k8s[key]
    run_k8s = k8s.get("runK8sConfig") or {}
    sub = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
           "podTemplateSpecMetadata": "pod_template_spec_metadata", "jobSpecConfig": "job_spec_config",
           "jobMetadata": "job_metadata"}
    unknown = set(run_k8s) - set(sub)
    assert not unknown, f"runK8sConfig keys the chart ignores: {unknown}"
    if run_k8s:
        config["run_k8s_config"] = {sub[k]: v for k, v in run_k8s.items() if v}
    return config


def user_deployment_container_context(deployment: dict) -> dict:
    """The container context the chart gives the code location when includeConfigInLaunchedRuns is on."""
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]
    k8s = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [f"dagster-dagster-user-deployments-{deployment['name']}-user-env",
                            *_names(deployment.get("envConfigMaps"))],
        "env_secrets": _names(deployment.get("envSecrets")),
        "namespace": NAMESPACE,
        "service_account_name": "dagster-dagster-user-deployments-user-deployments",
        "run_k8s_config": {"pod_spec_config": {"automount_service_account_token": True}},
    }
    for key, field in (("resources", "resources"), ("env", "env"), ("labels", "labels"),
                       ("volumeMounts", "volume_mounts"), ("volumes", "volumes")):
        if deployment.get(key):
            k8s[field] = deployment[key]
    return {"k8s": k8s}


def _deployment() -> dict:
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    return deployment


def test_run_launcher_config_validates_and_builds_the_run_job(tmp_path):
    from dagster._config import validate_config
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job

    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    config = render_k8s_run_launcher(VALUES)
    result = validate_config(K8sRunLauncher.config_type(), config)
    assert result.success, [e.message for e in result.errors]

    # A real launcher object (outside a cluster: a kubeconfig that is parsed, never contacted).
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
        "users": [{"name": "x", "user": {"token": "unused"}}],
    }))
    launcher = K8sRunLauncher(**{**result.value, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)})

    deployment = _deployment()
    image = f'{deployment["image"]["repository"]}:{deployment["image"]["tag"]}'
    pointer = ModuleCodePointer(deployment["dagsterApiGrpcArgs"][1], "defs", working_directory=None)
    origin = JobPythonOrigin("media_sync_job", RepositoryPythonOrigin(
        executable_path="python", code_pointer=pointer,
        container_context=user_deployment_container_context(deployment), container_image=image))
    run = DagsterRun(job_name="media_sync_job", run_id=str(uuid.uuid4()), job_code_origin=origin)

    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    job = construct_dagster_k8s_job(
        context.get_k8s_job_config(job_image=image, run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"], job_name=f"dagster-run-{run.run_id}",
        user_defined_k8s_config=context.run_k8s_config, pod_name=f"dagster-run-{run.run_id}", component="run_worker",
    )
    (container,) = job.spec.template.spec.containers
    assert container.image == "registry.example.com/ig-analytics:0.1.0"
    secrets = {e.secret_ref.name for e in container.env_from if e.secret_ref}
    assert "ig-analytics-env" in secrets  # DATABASE_URL, IG_TOKEN_KEY, IG_NOTIFY_WEBHOOK_URL
    env = {e.name: e.value for e in container.env}
    assert env["IG_ANALYTICS_LOG_FORMAT"] == "json" and env["IG_ANALYTICS_HOME"] == "/tmp/ig-analytics"
    assert env["DAGSTER_HOME"] == DAGSTER_HOME
    # what the values mean for run pods (runK8sConfig.containerConfig) is what a run pod gets; the user
    # deployment's own resources, passed along by includeConfigInLaunchedRuns, take precedence over it
    wanted = VALUES["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    assert container.resources.limits == wanted["limits"] and container.resources.requests == wanted["requests"]


def _chart_instance_sections(values: dict) -> dict:
    """run_coordinator, concurrency, run_monitoring and run_retries as the chart renders them into dagster.yaml."""
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    qrc = (coordinator.get("config") or {}).get("queuedRunCoordinator") or {}
    concurrency = values.get("concurrency") or {}
    pools, runs = concurrency.get("pools") or {}, concurrency.get("runs") or {}
    mon = values["dagsterDaemon"]["runMonitoring"]
    retries = values["dagsterDaemon"]["runRetries"]
    out = {
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator", "config": {
            field: qrc[key] for key, field in (("maxConcurrentRuns", "max_concurrent_runs"),
                                               ("tagConcurrencyLimits", "tag_concurrency_limits")) if key in qrc}},
        "run_monitoring": {"enabled": mon["enabled"], "start_timeout_seconds": mon["startTimeoutSeconds"],
                           "poll_interval_seconds": mon["pollIntervalSeconds"],
                           "max_resume_run_attempts": mon["maxResumeRunAttempts"]},
        "run_retries": {"enabled": retries["enabled"], "max_retries": retries["maxRetries"]},
    }
    # the chart's dagsterYaml.concurrency template
    if pools:
        out.setdefault("concurrency", {})["pools"] = {
            k: pools[v] for k, v in (("default_limit", "defaultLimit"), ("granularity", "granularity")) if v in pools}
    if runs:
        out.setdefault("concurrency", {})["runs"] = {
            k: runs[v] for k, v in (("max_concurrent_runs", "maxConcurrentRuns"),
                                    ("tag_concurrency_limits", "tagConcurrencyLimits")) if v in runs}
    return out


def test_chart_instance_sections_validate_and_match_compose():
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema, validate_concurrency_config

    sections = _chart_instance_sections(VALUES)
    if "concurrency" in sections:
        validate_concurrency_config(sections)
    result = validate_config(dagster_instance_config_schema(), sections)
    assert result.success, [e.message for e in result.errors]

    queue_limits = {**sections["run_coordinator"]["config"], **sections.get("concurrency", {}).get("runs", {})}
    assert queue_limits == COMPOSE_INSTANCE["concurrency"]["runs"]
    # the graph_api pool: without it a Kubernetes deployment runs Graph API steps without any slot limit
    assert sections.get("concurrency", {}).get("pools") == COMPOSE_INSTANCE["concurrency"]["pools"]


def test_executor_needs_no_k8s_config():
    """Runs execute their steps in the run's own pod (in-process executor): no k8s_job_executor config exists
    in the values, and none is needed; each run (each shard) is one pod."""
    from dagster._core.definitions.executor_definition import in_process_executor

    from ig_analytics.definitions import defs

    assert defs.executor is in_process_executor
    assert "executor" not in VALUES["runLauncher"]["config"]["k8sRunLauncher"]


@pytest.mark.slow
def test_user_deployment_command_serves_the_definitions(pg_url, tmp_path):
    """The chart runs `dagster api grpc -h 0.0.0.0 -p <port> <dagsterApiGrpcArgs>` in the user deployment."""
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._grpc.types import ListRepositoriesResponse
    from dagster_shared.serdes import deserialize_value

    deployment = _deployment()
    port = free_port()
    bin_dir = Path(sys.executable).parent
    args = [str(bin_dir / "dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(port),
            *deployment["dagsterApiGrpcArgs"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IG_", "DAGSTER_"))}
    env.update({e["name"]: e["value"] for e in deployment["env"]})
    env.update(DATABASE_URL=pg_url, IG_ANALYTICS_HOME=str(tmp_path), DAGSTER_HOME=str(tmp_path))
    with child(args, env) as server:
        health = [str(bin_dir / "dagster"), "api", "grpc-health-check", "-p", str(port)]

        def healthy():
            assert server.proc.poll() is None, server.stderr[-3000:]
            return subprocess.run(health, env=env, capture_output=True, timeout=60).returncode == 0
        wait_until(healthy, 180, "the user deployment's gRPC server to report SERVING", 1)
        listed = deserialize_value(DagsterGrpcClient(port=port, host="127.0.0.1").list_repositories(),
                                   ListRepositoriesResponse)
        assert [r.repository_name for r in listed.repository_symbols] == ["__repository__"]
