"""The sample deployment files: ``deploy/dagster.yaml`` makes a working instance on a real
PostgreSQL server; the compose file and the Helm values parse and name what docs/deploy.md
says they do (they are not run here: no container engine, no cluster)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, Postgres

DEPLOY = REPO / "deploy"


@pytest.mark.deploy
def test_sample_dagster_yaml_on_real_postgres(tmp_path: Path, postgres_server: Postgres,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
    from sqlalchemy.pool import QueuePool

    db = postgres_server.create_database()
    for k, v in {"DAGSTER_PG_HOST": postgres_server.host, "DAGSTER_PG_PORT":
                 str(postgres_server.port), "DAGSTER_PG_USER": postgres_server.user,
                 "DAGSTER_PG_PASSWORD": "testing", "DAGSTER_PG_DB": db}.items():
        monkeypatch.setenv(k, v)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        events = instance.event_log_storage
        assert isinstance(events, PostgresEventLogStorage)
        assert isinstance(events._engine.pool, QueuePool)  # the pooled storage, not NullPool
        coord = instance.run_coordinator
        assert isinstance(coord, QueuedRunCoordinator)
        assert coord.get_run_queue_config().max_concurrent_runs == 4
        limits = coord.get_run_queue_config().tag_concurrency_limits
        assert [(x["key"], x["value"], x["limit"]) for x in limits] == [
            ("biosigio/weight", "heavy", 1)]
        instance.add_dynamic_partitions("recordings", ["a__b"])  # tables exist and work
        assert instance.get_dynamic_partitions("recordings") == ["a__b"]
    finally:
        instance.dispose()


def test_compose_file_names_every_service() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "code", "webserver", "daemon", "worker"}
    assert services["worker"]["deploy"]["replicas"] == 2
    assert "dagster_celery.app" in services["worker"]["command"]
    env = compose["x-biosigio-env"]
    assert env["BIOSIGIO_EXECUTOR"] == "celery"
    assert {"BIOSIGIO_SOURCE_ROOTS", "BIOSIGIO_STORAGE_ROOT", "AWS_ACCESS_KEY_ID"} <= set(env)
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "code"


def test_helm_values_use_k8s_launcher_and_secrets() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (code,) = values["dagster-user-deployments"]["deployments"]
    assert code["dagsterApiGrpcArgs"] == ["-m", "biosigio_pipeline.definitions"]
    assert {"name": "biosigio-s3"} in code["envSecrets"]
    assert values["postgresql"]["enabled"] is False
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["tagConcurrencyLimits"][0]["key"] == "biosigio/weight"
    env = yaml.safe_load((DEPLOY / "helm" / "biosigio-env.yaml").read_text())
    assert {"BIOSIGIO_SOURCE_ROOTS", "BIOSIGIO_STORAGE_ROOT"} <= set(env["data"])
