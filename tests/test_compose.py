"""Shape checks for the production compose file and the API Dockerfile.

No Docker engine is available where the tests run, so the files are parsed and
their structure is asserted instead of being started.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.cockroach.yml"
DOCKERFILE = ROOT / "Dockerfile"

ROACH_IMAGE_RE = re.compile(r"^cockroachdb/cockroach:v\d+\.\d+\.\d+$")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"missing {COMPOSE_FILE}"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def command_text(service: dict) -> str:
    """The service's entrypoint + command as one string, whatever their form."""
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if value is None:
            continue
        parts.extend(value if isinstance(value, list) else [value])
    return " ".join(str(p) for p in parts)


def command_argv(service: dict) -> list[str]:
    value = service.get("command")
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(value or "")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {k: v for k, v in pairs}
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    """Dependency name -> condition (short list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def container_ports(service: dict) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def dockerfile_of(service: dict) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    return (COMPOSE_FILE.parent / context / dockerfile).resolve()


def roach_nodes(services: dict) -> dict[str, dict]:
    return {
        name: svc
        for name, svc in services.items()
        if str(svc.get("image", "")).startswith("cockroachdb/cockroach")
        and command_argv(svc)[:1] == ["start"]
    }


def find_service(services: dict, predicate, what: str) -> tuple[str, dict]:
    matches = [(n, s) for n, s in services.items() if predicate(s)]
    assert len(matches) == 1, f"expected exactly one {what}, found {[n for n, _ in matches]}"
    return matches[0]


def init_service(services: dict) -> tuple[str, dict]:
    return find_service(services, lambda s: "cockroach init" in command_text(s), "init service")


def migrate_service(services: dict) -> tuple[str, dict]:
    return find_service(services, lambda s: command_argv(s) == ["inventory", "migrate"], "migrate service")


# --------------------------------------------------------------------------- cockroach


def test_three_cockroach_nodes_on_one_pinned_image(services):
    nodes = roach_nodes(services)
    assert len(nodes) == 3, f"expected 3 cockroach nodes, found {sorted(nodes)}"
    images = {svc["image"] for svc in nodes.values()}
    assert len(images) == 1, f"nodes run different images: {images}"
    (image,) = images
    assert ROACH_IMAGE_RE.match(image), f"cockroach image not pinned to a version: {image}"


def test_nodes_join_each_other_and_advertise_themselves(services):
    nodes = roach_nodes(services)
    for name, svc in nodes.items():
        argv = command_argv(svc)
        assert "--insecure" in argv, name
        joins = [a.split("=", 1)[1] for a in argv if a.startswith("--join=")]
        assert len(joins) == 1, f"{name}: expected one --join flag"
        join_hosts = {addr.rsplit(":", 1)[0] for addr in joins[0].split(",")}
        assert join_hosts == set(nodes), f"{name} joins {join_hosts}, nodes are {set(nodes)}"
        assert f"--advertise-addr={name}:26257" in argv, f"{name} does not advertise itself"


def test_nodes_have_volume_and_readiness_healthcheck(services):
    for name, svc in roach_nodes(services).items():
        mounts = [str(v) for v in svc.get("volumes") or []]
        assert any(m.endswith(":/cockroach/cockroach-data") for m in mounts), f"{name} has no data volume"
        test = svc.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        assert "/health?ready=1" in " ".join(test if isinstance(test, list) else [test])


def test_one_node_publishes_sql_and_console(services):
    published = [container_ports(svc) for svc in roach_nodes(services).values()]
    assert any({26257, 8080} <= ports for ports in published)


def test_init_service_initialises_cluster_and_database(services):
    name, svc = init_service(services)
    nodes = roach_nodes(services)
    assert svc.get("image") == next(iter(nodes.values()))["image"]
    text = command_text(svc)
    assert re.search(r"cockroach init --insecure --host=roach\d:26257", text)
    assert re.search(r"CREATE DATABASE IF NOT EXISTS inventory\b", text)
    assert re.search(r"SET CLUSTER SETTING kv\.rangefeed\.enabled\s*=\s*true", text)
    assert "already been initialized" in text, "re-running init must be tolerated"
    assert set(depends_on(svc)) == set(nodes), f"{name} must wait for every node"


# --------------------------------------------------------------------------- app


def test_migrate_runs_after_init_completes(services):
    init_name, _ = init_service(services)
    _, svc = migrate_service(services)
    assert depends_on(svc).get(init_name) == "service_completed_successfully"
    assert dockerfile_of(svc) == DOCKERFILE.resolve()


def _check_database_url(url: str, services: dict) -> None:
    assert url.startswith("cockroachdb+psycopg://"), url
    parts = urlsplit(url)
    assert parts.hostname in roach_nodes(services), f"{url} does not point at a cockroach node"
    assert parts.port == 26257
    assert parts.path == "/inventory", f"{url} does not use database inventory"


def test_migrate_and_api_use_the_cluster(services):
    _, migrate = migrate_service(services)
    api = services["api"]
    migrate_url = environment(migrate).get("INVENTORY_DATABASE_URL", "")
    api_url = environment(api).get("INVENTORY_DATABASE_URL", "")
    _check_database_url(migrate_url, services)
    _check_database_url(api_url, services)
    assert migrate_url == api_url


def test_api_built_from_dockerfile_after_migrations(services):
    api = services["api"]
    assert dockerfile_of(api) == DOCKERFILE.resolve()
    migrate_name, _ = migrate_service(services)
    assert depends_on(api).get(migrate_name) == "service_completed_successfully"
    assert 8000 in container_ports(api)
    test = " ".join(api.get("healthcheck", {}).get("test") or [])
    assert "/healthz" in test


def test_api_exports_traces_to_jaeger(services):
    env = environment(services["api"])
    endpoint = urlsplit(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
    assert endpoint.hostname in services, f"OTLP endpoint {endpoint.geturl()!r} is not a service"
    target = services[endpoint.hostname]
    assert str(target.get("image", "")).startswith("jaegertracing/")
    assert endpoint.port == 4318 and endpoint.port in container_ports(target)
    assert env.get("OTEL_SERVICE_NAME") == "inventory"
    assert endpoint.hostname in depends_on(services["api"])


def test_jaeger_accepts_otlp_and_serves_ui(services):
    jaeger = services["jaeger"]
    assert re.match(r"^jaegertracing/all-in-one:\d+\.\d+\.\d+$", jaeger["image"]), jaeger["image"]
    assert environment(jaeger).get("COLLECTOR_OTLP_ENABLED", "").lower() == "true"
    assert {16686, 4318} <= container_ports(jaeger)


# --------------------------------------------------------------------------- references


def test_every_dependency_exists(services):
    for name, svc in services.items():
        for dep in depends_on(svc):
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert dep != name


def test_every_named_volume_is_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for svc in services.values():
        for mount in svc.get("volumes") or []:
            if isinstance(mount, dict):
                if mount.get("type", "volume") == "volume" and mount.get("source"):
                    used.add(mount["source"])
                continue
            source = str(mount).split(":", 1)[0]
            if ":" in str(mount) and not source.startswith((".", "/", "~", "$")):
                used.add(source)
    assert used, "no named volumes found"
    assert used <= declared, f"undeclared volumes: {sorted(used - declared)}"


# --------------------------------------------------------------------------- Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    assert DOCKERFILE.is_file(), f"missing {DOCKERFILE}"
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_base_image_is_python_311_or_newer():
    froms = [rest for kw, rest in _dockerfile_instructions() if kw == "FROM"]
    assert froms, "no FROM"
    image = froms[-1].split()[0]
    match = re.match(r"^(?:docker\.io/)?(?:library/)?python:(\d+)\.(\d+)", image)
    assert match, f"final stage is not a python image: {image}"
    assert (int(match[1]), int(match[2])) >= (3, 11), image


def test_dockerfile_runs_inventory_serve_as_non_root():
    instructions = _dockerfile_instructions()
    cmds = [rest for kw, rest in instructions if kw == "CMD"]
    assert cmds, "no CMD"
    argv = json.loads(cmds[-1])
    assert argv[:2] == ["inventory", "serve"], argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1] == "8000"
    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "image runs as root"
    assert any(kw == "EXPOSE" and "8000" in rest.split() for kw, rest in instructions)


def _fraction(argv: list[str], flag: str) -> float:
    for arg in argv:
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
            assert not value.endswith("%"), f"{flag}: use a fraction, got {value}"
            return float(value)
    raise AssertionError(f"{flag} not set")


def test_cockroach_nodes_fit_one_host_together(services):
    """All nodes share one host: 2 x max-sql-memory + cache, summed over the
    nodes, stays within CockroachDB's 80%-of-RAM guidance."""
    total = 0.0
    for svc in roach_nodes(services).values():
        argv = command_argv(svc)
        total += 2 * _fraction(argv, "--max-sql-memory") + _fraction(argv, "--cache")
    assert total <= 0.8, f"the nodes may take {total:.0%} of the host's memory"


def test_cockroach_ports_are_published_on_loopback_only(services):
    """The cluster is insecure: nothing of it may listen beyond this host."""
    for name, svc in roach_nodes(services).items():
        for entry in svc.get("ports") or []:
            host_ip = entry.get("host_ip") if isinstance(entry, dict) else (
                str(entry).rsplit(":", 2)[0] if str(entry).count(":") == 2 else None)
            assert host_ip == "127.0.0.1", f"{name} publishes {entry} beyond 127.0.0.1"


# --------------------------------------------------------------------------- monitoring


def host_mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (relative to the file)."""
    mounts = {}
    for mount in service.get("volumes") or []:
        source, target = str(mount).split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE_FILE.parent / source).resolve()
    return mounts


def in_container(service: dict, path: str) -> Path:
    """The host file a container path of the service resolves to, through its bind mounts."""
    for target, source in sorted(host_mounts(service).items(), key=lambda m: -len(m[0])):
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return source / path[len(target):].lstrip("/")
    raise AssertionError(f"{path} is not mounted from the repository")


def test_prometheus_scrapes_the_api_with_the_rules(services):
    prometheus = services["prometheus"]
    assert re.match(r"^prom/prometheus:v\d+\.\d+\.\d+$", prometheus["image"]), prometheus["image"]
    flags = dict(a.split("=", 1) for a in command_argv(prometheus) if "=" in a)
    config_path = in_container(prometheus, flags["--config.file"])
    assert config_path == (ROOT / "deploy" / "prometheus" / "prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    for rule_file in config["rule_files"]:  # relative to the configuration file
        assert (config_path.parent / rule_file).is_file(), rule_file
    assert "alerts.yml" in config["rule_files"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "inventory"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets, "no scrape target"
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert host in services and int(port) in container_ports(services[host]), target
        assert dockerfile_of(services[host]) == DOCKERFILE.resolve(), f"{host} is not the API"
    assert 9090 in container_ports(prometheus)
    assert "api" in depends_on(prometheus)
    assert any(str(v).endswith(":/prometheus") for v in prometheus["volumes"]), "no data volume"


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(services):
    grafana = services["grafana"]
    assert re.match(r"^grafana/grafana:\d+\.\d+\.\d+$", grafana["image"]), grafana["image"]
    assert 3000 in container_ports(grafana)
    assert "prometheus" in depends_on(grafana)
    provisioning = in_container(grafana, "/etc/grafana/provisioning")
    (datasource,) = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    url = urlsplit(datasource["url"])
    assert datasource["type"] == "prometheus"
    assert url.hostname in services and url.port in container_ports(services[url.hostname])
    assert str(services[url.hostname]["image"]).startswith("prom/prometheus:")
    (provider,) = yaml.safe_load(
        (provisioning / "dashboards" / "inventory.yml").read_text())["providers"]
    folder = in_container(grafana, provider["options"]["path"] + "/inventory.json")
    assert folder == ROOT / "deploy" / "grafana" / "inventory.json"
    dashboard = json.loads(folder.read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert uids == {datasource["uid"]}, "panels must use the provisioned data source"
