"""The container image and Kubernetes manifests agree with each other and with the bot.

No Docker engine or cluster is needed: the Dockerfile is read instruction by instruction
and every manifest is parsed with ruamel.yaml, then checked for structure and for the
values that must match across files (ports, paths, names, labels, the policy text).
"""

from __future__ import annotations

import importlib.util
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from ruamel.yaml import YAML

from bot.settings import LogSettings, Settings
from domain.policy_loader import parse_policy
from tests.support.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "kubernetes"
POLICY_EXAMPLE = ROOT / "policy.example.yml"
NAME_LABEL = "app.kubernetes.io/name"
APP = "changebot"
NAMESPACE = "changebot"
PORT = 3000
UID = 10001
SECRET_KEYS = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "DATABASE_URL",
    "PAGERDUTY_API_TOKEN",
    "PAGERDUTY_API_URL",
    "PAGERDUTY_EVENTS_URL",
    "PAGERDUTY_ROUTING_KEY",
}
IGNORED = (".git", ".venv", "*.db", ".env", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis")
BUILD_INPUTS = ("bot", "domain", "handlers", "modals", "scheduler", "storage", "pyproject.toml", "README.md")
REGEN_HINT = "regenerate it: python deploy/policy_configmap.py"


# --------------------------------------------------------------------------- YAML


def load_docs(path: Path) -> list[dict[str, Any]]:
    yaml = YAML(typ="safe", pure=True)
    return [doc for doc in yaml.load_all(path.read_text(encoding="utf-8")) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, for every manifest except the kustomization."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in manifest_files():
        if path.name == "kustomization.yaml":
            continue
        for doc in load_docs(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{path.name}: {key} defined twice"
            found[key] = doc
    return found


def one(kind: str) -> dict[str, Any]:
    matches = [doc for (k, _), doc in resources().items() if k == kind]
    assert len(matches) == 1, f"expected exactly one {kind}, found {len(matches)}"
    return matches[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value") for item in c.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to; -1 before the first FROM


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    stages: list[tuple[str, str]] = field(default_factory=list)  # (image, alias)

    def in_stage(self, stage: int, keyword: str | None = None) -> list[Instruction]:
        return [i for i in self.instructions if i.stage == stage and keyword in (None, i.keyword)]

    @property
    def final(self) -> int:
        return len(self.stages) - 1

    def env(self, stage: int) -> dict[str, str]:
        values: dict[str, str] = {}
        for ins in self.in_stage(stage, "ENV"):
            for token in shlex.split(ins.args):
                name, sep, value = token.partition("=")
                assert sep, f"use ENV NAME=value, not the legacy form: {ins.args}"
                values[name] = value
        return values

    def exec_form(self, stage: int, keyword: str) -> list[str]:
        found = self.in_stage(stage, keyword)
        assert len(found) == 1, f"expected one {keyword} in the final stage"
        value = json.loads(found[0].args)
        assert isinstance(value, list), f"{keyword} must use the exec (JSON) form"
        return value


def parse_dockerfile(text: str) -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # comment lines inside a continuation are dropped
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"
    args: dict[str, str] = {}
    parsed = Dockerfile([])
    stage = -1
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and stage == -1:
            name, _, default = rest.partition("=")
            args[name] = default
        if keyword == "FROM":
            stage += 1
            words = [w for w in rest.split() if not w.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], words[0])
            alias = words[2] if len(words) > 2 and words[1].upper() == "AS" else ""
            parsed.stages.append((image, alias))
        parsed.instructions.append(Instruction(keyword, rest, stage))
    return parsed


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def image_policy_path(dockerfile: Dockerfile) -> str:
    path = dockerfile.env(dockerfile.final).get("CHANGEBOT_POLICY", "")
    assert path.startswith("/"), "the image sets CHANGEBOT_POLICY to an absolute path"
    return path


# --------------------------------------------------------------------------- the manifests


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_parses_and_is_labelled(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        if path.name == "kustomization.yaml":
            assert doc["kind"] == "Kustomization"
            continue
        assert doc.get("apiVersion") and doc.get("kind"), path.name
        meta = doc["metadata"]
        assert meta["labels"][NAME_LABEL] == APP, f"{path.name}: missing {NAME_LABEL}: {APP}"
        if doc["kind"] == "Namespace":
            assert meta["name"] == NAMESPACE
        else:
            assert meta.get("namespace") == NAMESPACE, f"{path.name}: namespace {NAMESPACE}"
        template = doc.get("spec", {}).get("template")
        if template is not None:
            assert template["metadata"]["labels"][NAME_LABEL] == APP, f"{path.name}: pod labels"


def test_kustomization_lists_every_manifest_but_the_examples() -> None:
    (kustomization,) = load_docs(K8S / "kustomization.yaml")
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization.yaml lists {name}, which does not exist"
    expected = {
        p.name for p in manifest_files() if p.name != "kustomization.yaml" and ".example." not in p.name
    }
    assert set(listed) == expected
    assert not [name for name in listed if ".example." in name]
    assert kustomization["namespace"] == NAMESPACE
    for image in kustomization.get("images", []):
        assert str(image.get("newTag", "")) not in ("", "latest"), "pin the image tag"


def test_images_are_tagged_and_never_latest() -> None:
    for (kind, name), doc in resources().items():
        if "template" not in doc.get("spec", {}):
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            image = c["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", f"{kind}/{name}: image {image!r} needs a pinned tag"


def test_deployment_runs_two_hardened_replicas() -> None:
    deployment = one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod_labels = spec["template"]["metadata"]["labels"]
    assert selects(spec["selector"]["matchLabels"], pod_labels)

    pod = spec["template"]["spec"]
    c = container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert "ALL" in sc["capabilities"]["drop"]

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "a writable /tmp on a read-only root"

    resources_ = c["resources"]
    assert resources_["requests"]["cpu"] and resources_["requests"]["memory"]
    assert resources_["limits"]["memory"]
    assert c["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(c["lifecycle"]["preStop"]["exec"]["command"][1])

    spread = pod.get("topologySpreadConstraints", [])
    anti = pod.get("affinity", {}).get("podAntiAffinity")
    assert spread or anti, "spread the replicas over nodes"
    for constraint in spread:
        assert selects(constraint["labelSelector"]["matchLabels"], pod_labels)


def test_probes_hit_healthz_on_the_bot_port() -> None:
    c = container(one("Deployment"))
    assert {"name": "http", "containerPort": PORT, "protocol": "TCP"} in c["ports"]
    for probe in ("readinessProbe", "livenessProbe"):
        http = c[probe]["httpGet"]
        assert (http["path"], http["port"]) == ("/healthz", PORT), probe
        assert c[probe]["timeoutSeconds"] < c[probe]["periodSeconds"], probe
    ready, live = c["readinessProbe"], c["livenessProbe"]
    # Liveness gives up later than readiness: a database outage unreadies, it does not restart.
    assert (
        live["periodSeconds"] * live["failureThreshold"] > ready["periodSeconds"] * ready["failureThreshold"]
    )


def test_deployment_takes_settings_from_the_secret_and_does_not_migrate() -> None:
    secret = one("Secret")
    c = container(one("Deployment"))
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in c["envFrom"]
    env = env_of(c)
    assert env["CHANGEBOT_AUTO_MIGRATE"] == "false"
    assert "changebot_auto_migrate" in Settings.model_fields
    assert TypeAdapter(bool).validate_python(env["CHANGEBOT_AUTO_MIGRATE"]) is False


def test_prometheus_scrapes_metrics_on_the_bot_port() -> None:
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_policy_mount_matches_the_image(dockerfile: Dockerfile) -> None:
    policy_path = image_policy_path(dockerfile)
    directory, filename = posixpath.split(policy_path)
    deployment = one("Deployment")
    configmap = one("ConfigMap")
    c = container(deployment)
    env = env_of(c)
    if "CHANGEBOT_POLICY" in env:
        assert env["CHANGEBOT_POLICY"] == policy_path
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert directory in mounts, f"the policy ConfigMap is mounted at {directory}"
    assert mounts[directory]["readOnly"] is True
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mounts[directory]["name"]
    )
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    items = {item["key"]: item["path"] for item in volume["configMap"].get("items", [])}
    assert items.get(filename, filename) == filename
    assert filename in configmap["data"]


def test_configmap_holds_the_example_policy() -> None:
    text = one("ConfigMap")["data"]["policy.yml"]
    assert text == POLICY_EXAMPLE.read_text(encoding="utf-8"), f"configmap-policy.yaml is stale; {REGEN_HINT}"
    parse_policy(text, source="configmap-policy.yaml")  # raises PolicyError with every problem


def test_policy_configmap_script_reproduces_the_manifest() -> None:
    spec = importlib.util.spec_from_file_location("policy_configmap", ROOT / "deploy" / "policy_configmap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = POLICY_EXAMPLE.read_text(encoding="utf-8")
    rendered = module.render(text, source=POLICY_EXAMPLE.name)
    assert rendered == (K8S / "configmap-policy.yaml").read_text(encoding="utf-8"), REGEN_HINT
    yaml = YAML(typ="safe", pure=True)
    for sample in ["a: 1", "a: 1\n", "a: 1\n\n\n", "a:\n  - x   \n\n  - y\n"]:
        assert yaml.load(module.render(sample, source="t"))["data"]["policy.yml"] == sample


def test_migration_job_runs_db_upgrade_with_the_same_env() -> None:
    job = one("Job")
    deployment = one("Deployment")
    c = container(job)
    assert [*c.get("command", []), *c.get("args", [])] == ["db", "upgrade"]
    assert c["image"] == container(deployment)["image"]
    assert c["envFrom"] == container(deployment)["envFrom"]
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1
    assert spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    # The Job's pod never joins the Service or counts toward the PodDisruptionBudget.
    job_labels = spec["template"]["metadata"]["labels"]
    assert not selects(one("Service")["spec"]["selector"], job_labels)
    assert not selects(one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], job_labels)


def test_migration_job_logs_like_the_deployment() -> None:
    """`db upgrade` honours LOG_LEVEL / LOG_FORMAT too: the Job sets them as the Deployment does."""
    job_env, serve_env = env_of(container(one("Job"))), env_of(container(one("Deployment")))
    for name in ("LOG_LEVEL", "LOG_FORMAT"):
        assert name.lower() in LogSettings.model_fields
        assert name in serve_env and job_env.get(name) == serve_env[name], name
    LogSettings.model_validate({"log_level": job_env["LOG_LEVEL"], "log_format": job_env["LOG_FORMAT"]})


def test_secret_example_has_every_key_as_a_placeholder() -> None:
    secret = one("Secret")
    data = secret["stringData"]
    assert set(data) == SECRET_KEYS
    fields = {name.upper() for name in Settings.model_fields}
    assert set(data) <= fields, "every key is a setting changebot reads"
    required = {name.upper() for name, f in Settings.model_fields.items() if f.is_required()}
    assert required <= set(data)
    for key in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"):
        assert "CHANGE-ME" in data[key], f"{key} must be an obvious placeholder"
    assert data["DATABASE_URL"].startswith("postgresql+asyncpg://")
    for key, default in (
        ("SLACK_API_URL", "slack_api_url"),
        ("PAGERDUTY_API_URL", "pagerduty_api_url"),
        ("PAGERDUTY_EVENTS_URL", "pagerduty_events_url"),
    ):
        assert data[key].rstrip("/") == Settings.model_fields[default].default.rstrip("/")
    assert "EXAMPLE" in (K8S / "secret.example.yaml").read_text(encoding="utf-8")


def test_service_pdb_and_ingress_reach_the_bot() -> None:
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one("Service")
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert selects(service["spec"]["selector"], pod_labels)
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert port["targetPort"] in (PORT, "http")

    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)

    ingress = one("Ingress")
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"] and tls["hosts"]
    paths = {}
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in tls["hosts"]
        for p in rule["http"]["paths"]:
            paths[p["path"]] = p["backend"]["service"]
    assert set(paths) == {"/slack/events", "/calendar.ics"}
    for backend in paths.values():
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"] in ({"number": port["port"]}, {"name": port["name"]})


# --------------------------------------------------------------------------- the Dockerfile


def test_dockerfile_builds_the_wheel_in_a_separate_stage(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "multi-stage"
    for image, _alias in dockerfile.stages:
        name, _, tag = image.rpartition("/")[2].partition(":")
        assert tag and tag != "latest", f"FROM {image}: pin a tag"
        assert name == "python" and tag.startswith("3.11-slim"), image
    final = dockerfile.final
    builds = [
        i for i in dockerfile.instructions if i.keyword == "RUN" and re.search(r"pip wheel|-m build", i.args)
    ]
    assert builds, "a stage builds the wheel"
    assert all(i.stage != final for i in builds), "the wheel is built outside the final stage"
    build_alias = dockerfile.stages[builds[0].stage][1]
    uses_build = [i for i in dockerfile.in_stage(final) if f"from={build_alias}" in i.args]
    assert uses_build, "the final stage takes the wheels from the build stage"
    assert any("venv" in i.args and "install" in i.args for i in dockerfile.in_stage(final, "RUN"))
    for ins in dockerfile.in_stage(final, "RUN"):
        assert not re.search(r"apt-get install|build-essential|gcc", ins.args), (
            "no build tools in the final image"
        )


def test_dockerfile_copies_every_package(dockerfile: Dockerfile) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    include = re.search(r"\[tool\.setuptools\.packages\.find\]\s*include\s*=\s*\[([^\]]*)\]", pyproject)
    assert include is not None
    packages = {p.strip().strip('"').rstrip("*") for p in include.group(1).split(",") if p.strip()}
    build_stage = next(
        i.stage for i in dockerfile.instructions if i.keyword == "RUN" and "pip wheel" in i.args
    )
    copied = {
        word.strip("./")
        for ins in dockerfile.in_stage(build_stage, "COPY")
        for word in ins.args.split()[:-1]
        if not word.startswith("--")
    }
    assert packages <= copied, f"not copied into the build stage: {sorted(packages - copied)}"
    assert {"pyproject.toml", "README.md"} <= copied


def test_dockerfile_runtime_contract(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    (user,) = dockerfile.in_stage(final, "USER")
    uid = user.args.split(":")[0]
    assert uid not in ("root", "0") and uid == str(UID)
    assert any(str(PORT) in i.args.split() for i in dockerfile.in_stage(final, "EXPOSE"))
    env = dockerfile.env(final)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert image_policy_path(dockerfile) == "/etc/changebot/policy.yml"
    (health,) = dockerfile.in_stage(final, "HEALTHCHECK")
    assert "urllib" in health.args and f"127.0.0.1:{PORT}/healthz" in health.args
    assert "curl" not in health.args
    assert dockerfile.exec_form(final, "ENTRYPOINT") == ["changebot"]
    cmd = dockerfile.exec_form(final, "CMD")
    assert cmd == ["serve", "--host", "0.0.0.0", "--port", str(PORT)]
    assert container(one("Deployment"))["args"] == cmd


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = {
        line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines() if line.strip()
    }
    for needed in IGNORED:
        assert needed in patterns, f".dockerignore should exclude {needed}"
    for kept in BUILD_INPUTS:
        assert kept not in patterns, f"the build needs {kept}"


def test_dockerfile_parser_handles_continuations_and_args() -> None:
    parsed = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nARG BASE=python:3.11-slim\nFROM ${BASE} AS build\n"
        "RUN a \\\n # note\n && b\nFROM $BASE\nENV A=1 \\\n    B=two\n"
    )
    assert parsed.stages == [("python:3.11-slim", "build"), ("python:3.11-slim", "")]
    assert parsed.in_stage(0, "RUN")[0].args == "a  && b"
    assert parsed.env(1) == {"A": "1", "B": "two"}
