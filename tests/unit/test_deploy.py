"""deploy/: compose, Dockerfile and Kubernetes manifests name only what the code has.

Docker and kubectl are not available here, so these files are checked by
reading them: they parse, every TOUCHPOINT_* variable is a Settings field, every
command is a `touchpoint` subcommand, ports match the settings, probes hit the
health endpoints, and worker replicas fit the partition count.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from touchpoint.cli import build_parser
from touchpoint.core.settings import CONFIG_ENV, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV_NAME = re.compile(r"\bTOUCHPOINT_[A-Z0-9_]+\b")
TOUCHPOINT_IMAGE = "touchpoint:"


def subcommands() -> set[str]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(sub.choices)


def assert_cli_accepts(argv: list[str], where: str) -> None:
    """The whole command line, options included, parses with the real `touchpoint` parser."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"{where}: `touchpoint {' '.join(argv)}` is not a valid command line") from exc


def settings_env_names() -> set[str]:
    return {f"TOUCHPOINT_{name.upper()}" for name in Settings.model_fields} | {CONFIG_ENV}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def k8s_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") != "Kustomization"
    ]


def deploy_text_files() -> Iterator[Path]:
    yield ROOT / "Dockerfile"
    yield from (p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml", ".md", ".json"})


def touchpoint_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items() if svc.get("image", "").startswith(TOUCHPOINT_IMAGE)}


def containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in k8s_docs():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            yield doc, container


def test_every_deploy_file_parses() -> None:
    for path in DEPLOY.rglob("*"):
        if path.suffix in {".yaml", ".yml"}:
            list(yaml.safe_load_all(path.read_text()))
    assert compose()["services"] and k8s_docs()


def test_every_touchpoint_env_var_in_deploy_files_is_a_setting() -> None:
    known = settings_env_names()
    for path in deploy_text_files():
        unknown = set(ENV_NAME.findall(path.read_text())) - known
        unknown -= {"TOUCHPOINT_CONNECTORS_FILE"}  # compose-only: which connectors file to mount
        assert not unknown, f"{path.relative_to(ROOT)} names settings the code does not read: {sorted(unknown)}"


def test_compose_env_values_build_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in touchpoint_services().items():
        env = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in service["environment"].items()}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert settings.kafka_bootstrap == "kafka:9092" and settings.clickhouse_url.startswith("http://"), name
        for key in env:
            monkeypatch.delenv(key)


def test_compose_runs_the_whole_stack_with_health_checks() -> None:
    services = compose()["services"]
    images = {name: svc.get("image", "") for name, svc in services.items()}
    assert images["kafka"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert images["clickhouse"].startswith("clickhouse/clickhouse-server:")
    assert images["prometheus"].startswith("prom/prometheus:") and images["grafana"].startswith("grafana/grafana:")
    assert "grafana-clickhouse-datasource" in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    for name in ("kafka", "clickhouse", "worker", "connectors", "prometheus", "grafana"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_compose_commands_are_touchpoint_subcommands() -> None:
    known = subcommands()
    services = touchpoint_services()
    assert {"worker", "connectors", "migrate"} <= set(services)
    for name, service in services.items():
        assert service["command"][0] in known, f"compose service {name} runs unknown `touchpoint {service['command'][0]}`"
        assert_cli_accepts(service["command"], f"compose service {name}")


def test_compose_ports_match_settings_and_prometheus_targets() -> None:
    defaults = Settings()
    services = compose()["services"]
    worker = services["worker"]
    assert f"{defaults.web_port}:{defaults.web_port}" in worker["ports"]
    assert str(defaults.web_port) in " ".join(worker["healthcheck"]["test"]) and "/readyz" in " ".join(worker["healthcheck"]["test"])
    assert f"{defaults.metrics_port}:{defaults.metrics_port}" in services["connectors"]["ports"]
    assert f"{defaults.webhook_port}:{defaults.webhook_port}" in services["connectors"]["ports"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert targets["touchpoint-worker"] == [f"worker:{defaults.web_port}", f"enrich:{defaults.web_port}"]
    assert targets["touchpoint-connectors"] == [f"connectors:{defaults.metrics_port}"]
    mounted = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for folder in ("./prometheus:", "./grafana/provisioning:", "./grafana/dashboards:"):
        assert folder in mounted and (DEPLOY / folder[2:-1]).is_dir()


def test_dockerfile_installs_cpu_torch_first_and_runs_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    torch_at = next(i for i, line in enumerate(lines) if "torch==2.13.0" in line)
    package_at = next(i for i, line in enumerate(lines) if re.search(r"pip install .* \.( |$)", line))
    assert torch_at < package_at and "whl/cpu" in text
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["touchpoint"]' in lines and 'CMD ["worker"]' in lines
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folder in package_dirs.values():  # every folder mapped under the import root is copied
        assert f"COPY {folder} ./{folder}" in lines, folder


def test_k8s_worker_probes_ports_and_replicas_fit_partitions() -> None:
    docs = k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "touchpoint-config")
    partitions = int(config["data"]["TOUCHPOINT_TOPIC_PARTITIONS"])
    web_port = int(config["data"]["TOUCHPOINT_WEB_PORT"])
    for name in ("touchpoint-enrich", "touchpoint-worker"):
        worker = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
        assert 1 <= worker["spec"]["replicas"] <= partitions
        [container] = worker["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["web"] == web_port
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert services["touchpoint-worker"]["spec"]["ports"][0]["port"] == web_port
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "ConfigMap", "Deployment", "Service"} <= kinds
    assert all(d["metadata"].get("namespace", "touchpoint") == "touchpoint" for d in docs)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_k8s_commands_env_and_secrets() -> None:
    known_commands, known_env = subcommands(), settings_env_names()
    for doc in k8s_docs():
        if doc["kind"] in {"ConfigMap"} and doc["metadata"]["name"] == "touchpoint-config":
            assert set(doc["data"]) <= known_env
        assert doc["kind"] != "Secret", "manifests reference secrets; they never carry values"
    seen = 0
    for doc, container in containers():
        seen += 1
        assert container["image"].startswith(TOUCHPOINT_IMAGE)
        assert container["args"][0] in known_commands, f"{doc['metadata']['name']}: unknown `touchpoint {container['args'][0]}`"
        assert_cli_accepts(container["args"], doc["metadata"]["name"])
        for env in container.get("env", []):
            assert env["name"] in known_env
            assert "value" not in env or "SECRET" not in env["name"] and "PASSWORD" not in env["name"]
            if "valueFrom" in env:
                assert env["valueFrom"]["secretKeyRef"]["name"] == "touchpoint-secrets"
    assert seen >= 3


def test_readme_says_how_to_run_them() -> None:
    text = (DEPLOY / "README.md").read_text()
    for needle in ("docker compose", "kubectl apply -k deploy/k8s", "docker build", "/readyz", "promtool test rules"):
        assert needle in text, needle


def test_connectors_config_in_the_manifests_is_valid(tmp_path: Path) -> None:
    from touchpoint.connectors.config import load_config

    doc = next(d for d in k8s_docs() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "touchpoint-connectors")
    (tmp_path / "connectors.yaml").write_text(doc["data"]["connectors.yaml"])
    assert load_config(tmp_path / "connectors.yaml") == []
    mounted = compose()["services"]["connectors"]["volumes"][0]
    default_file = re.search(r"\$\{TOUCHPOINT_CONNECTORS_FILE:-\./([^}]+)\}", mounted)[1]
    assert load_config(DEPLOY / default_file)


def test_no_deploy_file_ships_a_default_customer_id_secret() -> None:
    """A public default secret would let anyone test guessed emails against stored customer ids."""
    for name, service in touchpoint_services().items():
        value = str(service["environment"].get("TOUCHPOINT_CUSTOMER_ID_SECRET", ""))
        assert value.startswith("${TOUCHPOINT_CUSTOMER_ID_SECRET:?"), f"compose {name}: the secret must be required"
    for doc, container in containers():
        for env in container.get("env", []):
            if env["name"] == "TOUCHPOINT_CUSTOMER_ID_SECRET":
                assert "secretKeyRef" in env.get("valueFrom", {}), doc["metadata"]["name"]


def test_workers_run_in_roles_and_inference_threads_follow_their_cpus() -> None:
    """Issue 18: enrich replicas (models) and sink replicas (store, API) are separate; each replica's
    inference threads are the CPUs it is given (threads 0 = the cgroup CPU limit), never a fixed count that
    could exceed them."""
    from touchpoint.cli import build_parser

    def role(argv: list[str]) -> str:
        return build_parser().parse_args(argv).role

    docs = k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "touchpoint-config")
    roles = {}
    for doc, container in containers():
        if container["args"][0] == "worker":
            roles[role(container["args"])] = container
            assert config["data"].get("TOUCHPOINT_TORCH_THREADS", "0") == "0"
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert limits["cpu"] == requests["cpu"], f"{doc['metadata']['name']}: the CPU limit is what threads follow"
    assert set(roles) == {"enrich", "sink"}
    services = touchpoint_services()
    compose_roles = {role(s["command"]): s for s in services.values() if s["command"][0] == "worker"}
    assert set(compose_roles) == {"enrich", "sink"}
    for service in compose_roles.values():
        assert service.get("cpus"), "a worker without a CPU limit would size its threads by the host"
        assert service["environment"].get("TOUCHPOINT_TORCH_THREADS", "0") == "0"
