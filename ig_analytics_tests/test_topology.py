"""The Docker Compose topology of deploy/docker/, run here as processes (no Docker on this machine).

PostgreSQL (a fresh database on the session's server), the user-code gRPC server, the webserver and the daemon
are started with the commands and the environment the compose file gives them (``env.example`` filled in, the
host ``postgres``/``user_code`` mapped to 127.0.0.1 and free ports), with ``deploy/docker/dagster.yaml`` and
``workspace.yaml`` in ``DAGSTER_HOME``. A partition backfill and a schedule tick go through GraphQL; the runs must
execute in the code server's process tree (not the daemon's or the webserver's) and write the tables."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet

from ig_analytics.sandbox import SandboxServer, SandboxWorld
from ig_analytics.storage import db
from ig_analytics_tests.ingestion_harness import register
from ig_analytics_tests.procs import child, free_port, graphql, wait_for_graphql, wait_until
from ig_analytics_tests.test_e2e_ui import LOCATION

pytestmark = pytest.mark.slow

DOCKER = Path(__file__).resolve().parents[1] / "deploy" / "docker"
IMAGE_DAGSTER_HOME = "/opt/dagster/dagster_home"
IMAGE_IG_HOME = "/var/lib/ig-analytics"


class GatedSandbox(SandboxServer):
    """Holds every API request until ``gate`` is set, so a run is provably alive while the test inspects it."""

    def __init__(self, world):
        super().__init__(world, port=0)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def serve_api(self, handler, req):
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(timeout=300)
        super().serve_api(handler, req)


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""
    def sub(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        got = env.get(name, "")
        if op == ":?" and not got:
            raise AssertionError(f"compose would refuse to start: {arg}")
        return got if got or op != ":-" else arg
    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", sub, value)


def _env_example() -> dict[str, str]:
    out = {}
    for line in (DOCKER / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _service_env(compose: dict, dotenv: dict[str, str], pg_port: int, ig_home: Path, dagster_home: Path) -> dict:
    """The containers' environment: the compose file's, interpolated from .env, hosts and volumes mapped here."""
    env = {k: _interpolate(str(v), dotenv) for k, v in compose["x-ig-env"].items()}
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("@postgres:5432/", f"@127.0.0.1:{pg_port}/")
    assert env["DAGSTER_PG_HOST"] == "postgres" and env["DAGSTER_PG_PORT"] == "5432"
    env["DAGSTER_PG_HOST"], env["DAGSTER_PG_PORT"] = "127.0.0.1", str(pg_port)
    assert env["IG_ANALYTICS_HOME"] == IMAGE_IG_HOME
    env["IG_ANALYTICS_HOME"] = str(ig_home)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("IG_", "DAGSTER_")) and k != "DATABASE_URL"}
    return {**base, **env, "DAGSTER_HOME": str(dagster_home), "PYTHONUNBUFFERED": "1"}


def _command(compose: dict, service: str, ports: dict[str, int]) -> list[str]:
    bin_dir = Path(sys.executable).parent
    out = []
    for i, arg in enumerate(compose["services"][service]["command"]):
        if i == 0:
            arg = str(bin_dir / arg)
        elif arg == "0.0.0.0":
            arg = "127.0.0.1"
        elif arg in ports:
            arg = str(ports[arg])
        out.append(arg.replace(IMAGE_DAGSTER_HOME, ports["home"]) if isinstance(arg, str) else arg)
    return out


@pytest.fixture()
def topology_db(pg_server, pg_url):
    """A fresh database, as the compose postgres service would create it; dropped afterwards."""
    url = sa.engine.make_url(pg_url)
    name = f"topology_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _run_ids(gql, backfill_id: str) -> list[str]:
    runs = gql("""query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results { runId } } } }""",
               f={"tags": [{"key": "dagster/backfill", "value": backfill_id}]})["runsOrError"]["results"]
    return [r["runId"] for r in runs]


def _run(gql, run_id: str) -> dict:
    return gql("""query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value }
                  eventConnection { events { __typename ... on MessageEvent { message } } } } } }""",
               id=run_id)["runOrError"]


def _worker_pid(run: dict) -> int | None:
    for event in run["eventConnection"]["events"]:
        found = re.match(r"Started process for run \(pid: (\d+)\)", event.get("message") or "")
        if found:
            return int(found.group(1))
    return None


def _launched_through(engine, run_id: str) -> dict:
    """The gRPC server the DefaultRunLauncher handed the run to (a tag GraphQL hides; Dagster's own table)."""
    with engine.connect() as conn:
        raw = conn.execute(sa.text(
            "SELECT value FROM public.run_tags WHERE run_id = :id AND key = '.dagster/grpc_info'"), {"id": run_id}).scalar()
    assert raw, f"run {run_id} has no .dagster/grpc_info tag: it was not launched through a gRPC code server"
    return json.loads(raw)


def _tree(pid: int) -> set[int]:
    proc = psutil.Process(pid)
    return {pid} | {p.pid for p in proc.children(recursive=True)}


def test_compose_topology_as_processes(topology_db, ig_home, monkeypatch, tmp_path):
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((DOCKER / "dagster.yaml").read_text())
    code_port, web_port = free_port(), free_port()
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    grpc = workspace["load_from"][0]["grpc_server"]
    assert (grpc["host"], grpc["port"]) == ("user_code", 4000)
    grpc["host"], grpc["port"] = "127.0.0.1", code_port  # the compose network's host name, mapped here
    (dagster_home / "workspace.yaml").write_text(yaml.safe_dump(workspace))

    url = topology_db
    dotenv = {**_env_example(), "POSTGRES_USER": url.username, "POSTGRES_PASSWORD": url.password,
              "POSTGRES_DB": url.database, "IG_TOKEN_KEY": Fernet.generate_key().decode(),
              "IG_ANALYTICS_SHARDS": "2"}
    world = SandboxWorld.demo()  # real time: the runs read the wall clock
    sandbox = GatedSandbox(world)
    sandbox.start()
    dotenv["IG_GRAPH_API_URL"] = sandbox.base_url
    env = _service_env(compose, dotenv, url.port, ig_home, dagster_home)
    ports = {"4000": code_port, "3000": web_port, "home": str(dagster_home)}

    # Accounts added as `compose exec user_code ig-analytics accounts add` would: same database, same key.
    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    monkeypatch.setenv("IG_TOKEN_KEY", dotenv["IG_TOKEN_KEY"])
    engine = db.get_engine(env["DATABASE_URL"])
    db.migrate(engine)
    register(engine, world)
    try:
        with child(_command(compose, "user_code", ports), env) as code_server, \
                child(_command(compose, "webserver", ports), env) as webserver, \
                child(_command(compose, "daemon", ports), env) as daemon:
            url = f"http://127.0.0.1:{web_port}/graphql"
            gql = functools.partial(graphql, url)
            wait_for_graphql(url, webserver, timeout_s=180)

            def location_loaded():
                status = gql("""{ workspaceOrError { ... on Workspace { locationEntries { name
                                  locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
                entries = status["workspaceOrError"]["locationEntries"]
                assert code_server.proc.poll() is None, code_server.stderr[-3000:]
                return any(e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                           for e in entries)
            wait_until(location_loaded, 180, "the code location served by the user-code gRPC server", 2)

            yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
            partitions = [(yesterday - timedelta(days=i)).isoformat() for i in range(2, -1, -1)]
            launched = gql(
                """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
                     __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                params={"assetSelection": [{"path": ["account_insights_daily"]}], "partitionNames": partitions},
            )["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill_id = launched["backfillId"]

            # The daemon dequeues the run; it calls the sandbox and is held there: inspect it while it lives.
            assert sandbox.waiting.wait(timeout=300), f"no run reached the Graph API; daemon:\n{daemon.stderr[-3000:]}"
            run_id = wait_until(lambda: _run_ids(gql, backfill_id), 60, "the backfill's run")[0]
            pid = wait_until(lambda: _worker_pid(_run(gql, run_id)), 60, "the run worker's pid")
            worker = psutil.Process(pid)
            assert worker.is_running()
            assert code_server.pid in {p.pid for p in worker.parents()}, (pid, [p.pid for p in worker.parents()])
            assert pid not in _tree(daemon.pid) | _tree(webserver.pid)
            assert _launched_through(engine, run_id) == {"host": "127.0.0.1", "port": code_port}
            sandbox.gate.set()

            def backfill_done():
                status = gql("""query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                                  ... on PartitionBackfill { status } } }""", id=backfill_id)
                status = status["partitionBackfillOrError"]["status"]
                assert status not in ("FAILED", "CANCELED"), status
                return status in ("COMPLETED", "COMPLETED_SUCCESS")
            wait_until(backfill_done, 300, "the backfill", 2)
            with engine.connect() as conn:
                counts = dict(conn.execute(sa.text(
                    "SELECT ig_user_id, count(*) FROM instagram.account_insights_daily GROUP BY 1")).all())
            assert counts == {a.ig_user_id: 3 for a in world.accounts}

            # A schedule tick, evaluated by the code server and launched through the queue.
            tick = gql(
                """mutation($selector: ScheduleSelector!, $ts: Float) {
                     scheduleDryRun(selectorData: $selector, timestamp: $ts) {
                     ... on DryRunInstigationTick { evaluationResult { runRequests { runKey tags { key value } }
                       error { message } } } } }""",
                selector={**LOCATION, "scheduleName": "hourly_media_snapshots"},
                # the first tick after an hour ago: its partition exists already, as for a real tick
                ts=datetime.now(timezone.utc).timestamp() - 3600,
            )["scheduleDryRun"]["evaluationResult"]
            # two shards: two runs, asked for by the code server (where IG_ANALYTICS_SHARDS is read)
            assert tick["error"] is None and len(tick["runRequests"]) == 2, tick
            run_ids = []
            for request in tick["runRequests"]:
                run = gql(
                    """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                         __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                    params={"selector": {**LOCATION, "jobName": "media_sync_job"},
                            "executionMetadata": {"tags": request["tags"]}},
                )["launchRun"]
                assert run["__typename"] == "LaunchRunSuccess", run
                run_ids.append(run["run"]["runId"])

            def runs_done():
                statuses = [_run(gql, r)["status"] for r in run_ids]
                assert not {"FAILURE", "CANCELED"} & set(statuses), statuses
                return all(s == "SUCCESS" for s in statuses)
            wait_until(runs_done, 300, "the scheduled runs", 2)
            for run_id in run_ids:
                assert _launched_through(engine, run_id) == {"host": "127.0.0.1", "port": code_port}
            with engine.connect() as conn:
                captured = set(conn.execute(sa.text(
                    "SELECT DISTINCT s.ig_user_id FROM instagram.media_insights_snapshots s JOIN instagram.sync_runs r"
                    " ON r.ig_user_id = s.ig_user_id WHERE r.dagster_run_id = ANY(:runs)"),
                    {"runs": run_ids}).scalars())
            assert captured == {a.ig_user_id for a in world.accounts}
    finally:
        sandbox.gate.set()
        sandbox.stop()
        engine.dispose()
