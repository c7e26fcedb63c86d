"""The container stack (docker/) checked without a container engine.

docker/compose.yaml, interpolated from docker/.env.example, against the vendored Compose
specification schema and our own rules (health checks, pinned images, secrets only from the
environment, dependency conditions, settings that exist); docker/Dockerfile's stages (pinned bases,
not root, no compiler in the runtime image, every package the app imports copied); and the Temporal
namespace job's script run against a real dev server.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used
from jsonschema import Draft202012Validator

from config import Settings
from models import search_attributes
from tests.support.container_stack import (
    DOCKER,
    ROOT,
    MissingVariable,
    copied_sources,
    dockerfile_stages,
    interpolate,
    interpolate_tree,
    read_dotenv,
    referenced_variables,
    required_top_level,
)

COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
SCHEMA = DOCKER / "schema" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"  # check-jsonschema 0.39.0
# Settings whose name says they hold a secret: only ever ${VAR...} from the environment.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PII_KEYS|API_KEY|_PWD$", re.I)


def _raw() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _resolved(env: dict[str, str] | None = None) -> dict[str, Any]:
    resolved = interpolate_tree(_raw(), read_dotenv(ENV_EXAMPLE) if env is None else env)
    assert isinstance(resolved, dict)
    # Compose drops the x- extension fields after YAML merge keys have used them.
    return {key: value for key, value in resolved.items() if not key.startswith("x-")}


def _services() -> dict[str, dict[str, Any]]:
    services = _resolved()["services"]
    assert isinstance(services, dict)
    return services


def _is_job(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def test_the_vendored_schema_is_the_noted_version() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256, "update docker/schema/README.md"
    assert "Apache License" in (DOCKER / "schema" / "LICENSE").read_text()


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(_resolved()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_file() -> None:
    broken = _resolved()
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["worker"]["healthcheck"]["interval"] = ["15s"]
    errors = list(Draft202012Validator(json.loads(SCHEMA.read_text())).iter_errors(broken))
    assert len(errors) >= 2


def test_env_example_sets_every_variable_and_no_real_secret() -> None:
    example = read_dotenv(ENV_EXAMPLE)
    used = referenced_variables(json.dumps(_raw(), ensure_ascii=False))
    assert used - set(example) == set(), "variables compose.yaml reads that docker/.env.example lacks"
    assert set(example) - used == set(), "variables in docker/.env.example that compose.yaml never reads"
    for name, value in example.items():
        if SECRET_NAME.search(name) and value:
            assert value.startswith("change-me"), f"{name} in .env.example must be a change-me placeholder"


def test_every_secret_comes_from_the_environment() -> None:
    required = {"POSTGRES_PASSWORD", "HCP_DB_PASSWORD", "TEMPORAL_DB_PASSWORD", "HCP_SECRET_KEY", "HCP_PII_KEYS"}
    for name in required:
        env = read_dotenv(ENV_EXAMPLE) | {name: ""}
        with pytest.raises(MissingVariable, match=name):
            _resolved(env)
    for service_name, service in _raw()["services"].items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key):
                # Only an interpolation, with no default other than empty.
                match = re.fullmatch(r"\$\{(\w+)(:?\?[^}]*|:-)?\}", value)
                assert match, f"{service_name}: {key} must come from the environment, not {value!r}"
    text = COMPOSE.read_text()
    assert not re.search(r"(?i)(password|secret|token)\s*[:=]\s*[\"']?(?!\$\{)[A-Za-z0-9+/]{8,}", text)


def test_every_long_running_service_has_a_health_check_and_jobs_are_one_off() -> None:
    for name, service in _services().items():
        if _is_job(service):
            assert service.get("healthcheck", {}).get("disable") is True, name
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"
    jobs = {name for name, service in _services().items() if _is_job(service)}
    assert jobs == {"temporal-schema", "temporal-namespace", "migrate"}


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in _services().items():
        image = service["image"]
        reference, _, digest = image.partition("@")
        repository, _, tag = reference.rpartition(":") if ":" in reference.split("/")[-1] else (reference, "", "")
        assert tag or digest, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} floats"
        assert digest or re.match(r"v?\d+\.\d+", tag), f"{name}: {image}: pin at least major.minor"


def test_dependencies_wait_for_the_right_condition() -> None:
    services = _services()
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, how in depends.items():
            wanted = "service_completed_successfully" if _is_job(services[target]) else "service_healthy"
            assert how["condition"] == wanted, f"{name} → {target}: {how['condition']}, expected {wanted}"
    for app in ("api", "worker"):
        assert set(services[app]["depends_on"]) == {"migrate", "temporal-namespace"}
    assert services["temporal"]["depends_on"] == {"temporal-schema": {"condition": "service_completed_successfully"}}


def test_the_api_is_reached_only_through_the_proxy_with_forwarded_headers() -> None:
    services = _services()
    api = services["api"]
    assert "ports" not in api and "--proxy-headers" in api["command"]
    assert int(api["deploy"]["replicas"]) >= 2
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert set(services["proxy"]["networks"]) == {"edge"}
    conf = (DOCKER / "nginx.conf").read_text()
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-ID", "Upgrade"):
        assert f"proxy_set_header {header}" in conf
    assert services["mailpit"]["profiles"] == ["staging"]


def test_every_setting_passed_exists_and_the_example_is_a_valid_configuration() -> None:
    fields = {f"HCP_{name.upper()}" for name in Settings.model_fields}
    for name, service in _services().items():
        env = _environment(service)
        unknown = {key for key in env if key.startswith("HCP_")} - fields
        if name in ("api", "worker", "migrate"):
            assert not unknown, f"{name} passes settings config.py does not have: {sorted(unknown)}"
            values = {key.removeprefix("HCP_").lower(): value for key, value in env.items()}
            Settings.model_validate(values)
    app_env = _environment(_services()["api"])
    assert app_env["HCP_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert app_env["HCP_DATABASE_URL"].startswith("postgresql+psycopg://hcp:")


def test_the_namespace_job_creates_every_search_attribute() -> None:
    script = (DOCKER / "temporal" / "setup-namespace.sh").read_text()
    kinds = {"KEYWORD": "Keyword", "INT": "Int", "BOOL": "Bool"}
    for key in search_attributes.ALL:
        kind = kinds[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
        assert f"{key.name}={kind}" in script, f"setup-namespace.sh does not create {key.name}"
    assert _services()["temporal-namespace"]["environment"]["HCP_TEMPORAL_NAMESPACE"] == "hcp"


@pytest.mark.slow
def test_the_namespace_job_against_a_dev_server(tmp_path: Path) -> None:
    """Runs setup-namespace.sh twice with the temporal CLI the venv has, then lists what it made."""
    from tests.support.settings import free_port

    cli = Settings().temporal_cli_path
    port = free_port()
    server = subprocess.Popen(
        [cli, "server", "start-dev", "--headless", "--port", str(port), "--ui-port", str(free_port())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        env = {
            "PATH": f"{Path(cli).parent}:/usr/bin:/bin",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
            "HCP_TEMPORAL_NAMESPACE": "hcp-compose",
            "TEMPORAL_NAMESPACE_RETENTION": "72h",
        }
        for run in (1, 2):
            done = subprocess.run(
                ["sh", str(DOCKER / "temporal" / "setup-namespace.sh")],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, f"run {run}: {done.stdout}{done.stderr}"
        assert "search attribute HcpStage exists" in done.stdout and "namespace hcp-compose exists" in done.stdout
        listed = subprocess.run(
            [cli, "operator", "search-attribute", "list", "--address", env["TEMPORAL_ADDRESS"], "-n", "hcp-compose"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for key in search_attributes.ALL:
            assert key.name in listed
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_dockerfile_runtime_stage_is_pinned_unprivileged_and_without_compilers() -> None:
    stages = dockerfile_stages((DOCKER / "Dockerfile").read_text())
    assert len(stages) >= 2, "a build stage and a runtime stage"
    for stage in stages:
        base = stage.base
        assert ":" in base.split("/")[-1] or "@" in base, f"FROM {base} has no tag"
        assert not base.split("@")[0].endswith(":latest"), f"FROM {base} floats"
        assert re.search(r":\d+\.\d+\.\d+", base) or "@sha256:" in base, f"FROM {base}: pin the patch version"
    runtime = stages[-1]
    users = runtime.arguments("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the runtime stage must not run as root"
    assert runtime.arguments("HEALTHCHECK") and "/healthz" in runtime.arguments("HEALTHCHECK")[-1]
    runs = " ".join(runtime.arguments("RUN"))
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang|make)\b", runs), "a compiler in the runtime image"
    assert any("--from=build" in c and "/opt/venv" in c for c in runtime.arguments("COPY"))
    assert "--proxy-headers" in runtime.arguments("CMD")[-1] and "--no-access-log" in runtime.arguments("CMD")[-1]


def _uncopied(dockerfile: str) -> set[str]:
    copied = copied_sources(dockerfile_stages(dockerfile)[-1])
    return {name for name in required_top_level() if not any(c == name or c.startswith(name + "/") for c in copied)}


def test_dockerfile_copies_every_package_and_folder_the_app_uses() -> None:
    needed = required_top_level()
    # The derivation finds the data folders through the code that reads them, not from a list.
    assert {"api", "pages", "workflows", "templates", "policy", "migrations", "alembic.ini", "templating.py"} <= needed
    text = (DOCKER / "Dockerfile").read_text()
    assert _uncopied(text) == set(), "the runtime stage does not copy these"
    assert _uncopied(text.replace("COPY pages ./pages\n", "")) == {"pages"}
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert not needed & set(ignored), "the build context leaves out something the app needs"


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    """The Compose implementation itself, when this machine has one (`docker compose` or `docker-compose`)."""
    command: list[str] | None = None
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]) and subprocess.run([*candidate, "version"], capture_output=True).returncode == 0:
            command = candidate
            break
    if command is None:
        pytest.skip("neither the `docker compose` plugin nor `docker-compose` is installed here")
    version = subprocess.run([*command, "version", "--short"], capture_output=True, text=True).stdout.strip()
    compose = COMPOSE
    if version.lstrip("v").startswith("1."):
        # Compose 1.x predates the specification's top-level `name`; it checks everything else.
        raw = _raw()
        del raw["name"]
        compose = tmp_path / "compose.yaml"
        compose.write_text(yaml.safe_dump(raw, allow_unicode=True))
    done = subprocess.run(
        [*command, "--env-file", str(ENV_EXAMPLE), "--project-directory", str(DOCKER), "-f", str(compose)]
        + ["--profile", "staging", "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"{' '.join(command)} {version}: {done.stderr}"


def test_interpolation_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $$SET $SET", env) == "x d  d $SET x"
    assert interpolate("${SET:+alt}${EMPTY:+alt}", env) == "alt"
    with pytest.raises(MissingVariable, match="EMPTY: say why"):
        interpolate("${EMPTY:?say why}", env)
    assert interpolate("${EMPTY?fine}", env) == ""
