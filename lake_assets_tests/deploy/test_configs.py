"""The deployment's files cross-checked: the compose file, the Helm values, the image and
deploy/dagster.yaml name the same commands, ports, environment, volumes and limits, and the
containers run exactly the commands that `make deploy-local` (and so the stack tests) run as
processes. The containers stage (lake_assets_tests/containers/) runs the same files for real."""

from __future__ import annotations

import re

import pytest
import tomllib
import yaml

from lake_dev import deploy_local

pytestmark = pytest.mark.deploy

DEPLOY = deploy_local.DEPLOY
REPO = deploy_local.REPO


def _yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _env_refs(node) -> set[str]:
    """Every {env: NAME} in a Dagster yaml."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def _container(home: str, port: int, ui: int) -> deploy_local.Deployment:
    d = deploy_local.Deployment(root=REPO / "data" / "unused", host="0.0.0.0")
    d.grpc_port, d.ui_port = port, ui
    return d


def test_compose_runs_the_commands_deploy_local_runs():
    compose = _yaml("docker-compose.yaml")
    services = compose["services"]
    d = _container("/opt/dagster/home", 4266, 3000)

    def as_container(template: list[str]) -> list[str]:
        cmd = [template[0], *d.command(template)[1:]]
        return [c.replace(str(d.workspace), "/opt/dagster/home/workspace.yaml") for c in cmd]

    assert services["code_server"]["command"] == as_container(deploy_local.CODE_SERVER)
    assert services["webserver"]["command"] == as_container(deploy_local.WEBSERVER)
    assert services["daemon"]["command"] == as_container(deploy_local.DAEMON)
    assert services["migrate"]["command"] == deploy_local.MIGRATE
    # The image's default command is the code server's.
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    assert yaml.safe_load(cmd) == services["code_server"]["command"]
    assert re.search(r"^EXPOSE 4266 3000$", dockerfile, re.M)
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim-bookworm$", dockerfile, re.M)
    assert re.search(r"^USER lake$", dockerfile, re.M)
    assert "COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/" in dockerfile
    assert "DAGSTER_HOME=/opt/dagster/home" in dockerfile
    assert services["postgres"]["healthcheck"]["test"][1].startswith("pg_isready")
    for name in ("code_server", "webserver", "daemon"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_every_env_name_the_instance_and_workspace_read_is_set_by_compose_and_deploy_local(
    tmp_path,
):
    instance, workspace = _yaml("dagster.yaml"), _yaml("workspace.yaml")
    needed = _env_refs(instance) | _env_refs(workspace)
    assert needed == {
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
        "DAGSTER_GRPC_HOST",
        "DAGSTER_GRPC_PORT",
        "DAGSTER_COMPUTE_LOGS",
    }
    compose = _yaml("docker-compose.yaml")
    assert needed <= set(compose["x-instance-env"])
    assert needed <= set(deploy_local.Deployment(tmp_path).process_env())
    # What the launched run containers get: the instance's and the lake's settings.
    launcher = instance["run_launcher"]["config"]
    passed = set(compose["x-instance-env"]) | set(compose["x-lake-env"])
    assert set(launcher["env_vars"]) - passed == {"GOOGLE_APPLICATION_CREDENTIALS"} - passed
    assert set(launcher["env_vars"]) >= {"DAGSTER_PG_PASSWORD", "LAKE_DIR", "DUCKDB_PATH"}


def test_runs_get_the_same_volumes_network_and_paths_as_the_code_server():
    instance, compose = _yaml("dagster.yaml"), _yaml("docker-compose.yaml")
    launcher = instance["run_launcher"]["config"]
    assert launcher["network"] == compose["networks"]["lake_assets"]["name"]
    mounts = dict(v.split(":") for v in launcher["container_kwargs"]["volumes"])
    for volume, path in mounts.items():
        assert compose["volumes"][volume]["name"] == volume
        assert path.startswith("/")
    code_mounts = dict(v.split(":") for v in compose["services"]["code_server"]["volumes"])
    assert code_mounts["lake_assets_data"] == mounts["lake_assets_data"] == "/data"
    lake_env = compose["x-lake-env"]
    assert lake_env["LAKE_DIR"].startswith("/data/")
    assert lake_env["DUCKDB_PATH"].startswith("/data/")
    assert mounts["lake_assets_logs"] == compose["x-instance-env"]["DAGSTER_COMPUTE_LOGS"]


def test_helm_values_make_the_same_choices_as_the_instance():
    instance, helm = _yaml("dagster.yaml"), _yaml("helm/values.yaml")
    # The same queue: its limits and pool in additionalInstanceConfig, Dagster's queued
    # coordinator named as a custom one (#31086; test_helm.py renders it and has Dagster check it).
    assert helm["additionalInstanceConfig"]["concurrency"] == instance["concurrency"]
    coordinator = helm["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    assert {k: custom[k] for k in ("module", "class", "config")} == instance["run_coordinator"]
    assert instance["run_coordinator"]["config"] == {"dequeue_interval_seconds": 1}
    monitoring, helm_mon = instance["run_monitoring"], helm["dagsterDaemon"]["runMonitoring"]
    assert helm_mon["enabled"] is monitoring["enabled"] is True
    assert helm_mon["startTimeoutSeconds"] == monitoring["start_timeout_seconds"]
    assert helm_mon["pollIntervalSeconds"] == monitoring["poll_interval_seconds"]
    assert helm_mon["freeSlotsAfterRunEndSeconds"] == monitoring["free_slots_after_run_end_seconds"]
    # Retries as the instance has them, from additionalInstanceConfig: not the chart's block too
    # (two run_retries keys), which cannot say retry_on_asset_or_op_failure.
    assert helm["dagsterDaemon"]["runRetries"] == {"enabled": False}
    retries = {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}
    assert helm["additionalInstanceConfig"]["run_retries"] == instance["run_retries"] == retries
    assert helm["telemetry"] == instance["telemetry"] == {"enabled": False}
    storage = instance["storage"]["custom"]
    assert (storage["module"], storage["class"]) == (
        "lake_assets.postgres_storage",
        "PooledPostgresStorage",
    )
    scheme = storage["config"]["postgres_db"]["scheme"]
    assert helm["postgresql"]["postgresqlScheme"] == scheme == "postgresql+psycopg2"
    (user,) = helm["dagster-user-deployments"]["deployments"]
    assert user["dagsterApiGrpcArgs"] == ["-m", "lake_assets.definitions"]
    assert user["port"] == 4266
    assert {"name": "LAKE_ENV", "value": "gcp"} in user["env"]
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    assert "LAKE_ENV=gcp" in helm["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]


def test_dagster_cloud_yaml_loads_with_the_dagster_plus_loader():
    from dagster_cloud_cli.config.models import load_dagster_cloud_yaml

    config = load_dagster_cloud_yaml((REPO / "dagster_cloud.yaml").read_text())
    (location,) = config.locations
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    assert location.location_name == tool["code_location_name"]
    assert location.code_source.module_name == tool["module_name"]


def test_deploy_local_swaps_only_the_run_launcher():
    shipped, local = _yaml("dagster.yaml"), deploy_local.instance_yaml()
    assert local["run_launcher"] == {"module": "lake_assets.instance", "class": "LocalRunLauncher"}
    assert {k: v for k, v in local.items() if k != "run_launcher"} == {
        k: v for k, v in shipped.items() if k != "run_launcher"
    }


# The services that launch runs (the daemon dequeues them) or terminate them (the webserver's
# Terminate stops the run's container): DockerRunLauncher reads its env_vars and the socket there.
LAUNCHERS = ("daemon", "webserver")


def test_every_launcher_env_var_is_set_on_every_service_that_launches_or_terminates_runs():
    instance, compose = _yaml("dagster.yaml"), _yaml("docker-compose.yaml")
    names = instance["run_launcher"]["config"]["env_vars"]
    for service in LAUNCHERS:
        environment = compose["services"][service]["environment"]
        assert [n for n in names if n not in environment] == [], service


def test_services_that_launch_or_terminate_runs_reach_the_socket_and_nothing_else_does():
    services = _yaml("docker-compose.yaml")["services"]
    for name, service in services.items():
        mounts = [v.rsplit(":", 1)[1] for v in service.get("volumes", [])]
        has_socket = "/var/run/docker.sock" in mounts
        assert has_socket == (name in LAUNCHERS), name
        if has_socket:
            assert service["group_add"] == [
                "${DOCKER_GID:?set DOCKER_GID to the Docker socket's group: "
                "stat -c %g /var/run/docker.sock}"
            ]


def test_compose_runs_on_v1_and_v2_restarts_its_services_and_waits_for_the_code_server():
    compose = _yaml("docker-compose.yaml")
    # docker-compose 1.29 (Debian's) rejects a top-level name: the project's is given with -p.
    assert "name" not in compose
    assert (
        "docker compose -p lake_assets -f deploy/docker-compose.yaml up"
        in (DEPLOY / "docker-compose.yaml").read_text()
    )
    services = compose["services"]
    assert services["code_server"]["healthcheck"]["test"] == [
        "CMD",
        "dagster",
        "api",
        "grpc-health-check",
        "-p",
        "4266",
    ]
    for name, service in services.items():
        if name == "migrate":
            assert "restart" not in service  # a one-off
            continue
        assert service["restart"] == "unless-stopped", name
        if name in ("webserver", "webserver_readonly", "daemon"):
            assert service["depends_on"]["code_server"] == {"condition": "service_healthy"}
    # Published on this host only; the code server and PostgreSQL not at all.
    ports = {n: s.get("ports", []) for n, s in services.items()}
    assert ports["webserver"] == ["127.0.0.1:${DAGSTER_UI_PORT:-3000}:3000"]
    assert ports["webserver_readonly"] == ["127.0.0.1:${DAGSTER_UI_READONLY_PORT:-3001}:3000"]
    assert {n for n, p in ports.items() if p} == {"webserver", "webserver_readonly"}
    assert services["webserver_readonly"]["command"][-1] == "--read-only"


def test_run_containers_are_removed_when_they_exit():
    launcher = _yaml("dagster.yaml")["run_launcher"]["config"]
    assert launcher["container_kwargs"]["auto_remove"] is True


def test_no_password_is_written_in_a_shipped_file():
    compose = _yaml("docker-compose.yaml")
    assert compose["x-instance-env"]["DAGSTER_PG_PASSWORD"] == (
        "${DAGSTER_PG_PASSWORD:?set DAGSTER_PG_PASSWORD}"
    )
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == (
        "${DAGSTER_PG_PASSWORD:?set DAGSTER_PG_PASSWORD}"
    )
    assert _yaml("dagster.yaml")["storage"]["custom"]["config"]["postgres_db"]["password"] == {
        "env": "DAGSTER_PG_PASSWORD"
    }
