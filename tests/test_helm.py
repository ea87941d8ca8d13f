"""The Helm chart, without a cluster: a real helm renders it, the Kubernetes schemas judge it.

helm is the official binary (`make test` puts it in .venv/bin through
.ci/install-helm); every rendered manifest is validated strictly with
kubernetes-validate against the schemas of the oldest and newest Kubernetes
versions we support. The ServiceMonitor is a CRD those schemas do not hold,
so it is checked against the Service it must select.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from proxy.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "pixelpipe"
HELM = shutil.which("helm", path=os.path.dirname(sys.executable)) or shutil.which("helm")
KUBERNETES_VERSIONS = ("1.29.0", "1.35.0")

pytestmark = pytest.mark.skipif(
    HELM is None, reason="helm is not installed (make test installs it): SKIPPING chart tests"
)

ALL_ON = [
    "signing.existingSecret=pixelpipe-keys",
    "ingress.enabled=true",
    "ingress.className=nginx",
    "ingress.tls[0].secretName=img-tls",
    "ingress.tls[0].hosts[0]=img.example.com",
    "serviceMonitor.enabled=true",
    "serviceMonitor.labels.release=prometheus",
    "networkPolicy.enabled=true",
    "networkPolicy.redisPodSelector.app=redis",
    "redis.url=redis://redis:6379/0",
    "autoscaling.enabled=false",
    "podDisruptionBudget.enabled=true",
    "settings.AUTO_WEBP=true",
    "openTelemetry.enabled=true",
    "openTelemetry.endpoint=http://otel-collector.observability:4318",
    "openTelemetry.headersSecret=otel-headers",
]


def helm(*args: str) -> str:
    assert HELM is not None
    result = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def render(*sets: str) -> list[dict[str, Any]]:
    arguments = ["template", "img", str(CHART), "--namespace", "media"]
    for item in sets:
        arguments += ["--set", item]
    return [doc for doc in yaml.safe_load_all(helm(*arguments)) if doc]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for doc in docs:
        assert doc["kind"] not in kinds, f"two {doc['kind']}s"
        kinds[doc["kind"]] = doc
    return kinds


def container_env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


OBJECT_STORAGE = [
    "objectStorage.resultStorage=s3://results/pixelpipe",
    "objectStorage.s3.enabled=true",
    "objectStorage.s3.endpoint=http://minio.storage:9000",
    "objectStorage.s3.region=eu-west-1",
    "objectStorage.s3.credentialsSecret=s3-keys",
    "objectStorage.gcs.enabled=true",
    "objectStorage.gcs.keySecret=gcs-key",
    "objectStorage.abs.enabled=true",
    "objectStorage.abs.accountName=photos",
    "objectStorage.abs.keySecret=abs-key",
    "serviceAccount.create=true",
    r"serviceAccount.annotations.eks\.amazonaws\.com/role-arn=arn:aws:iam::1:role/pixelpipe",
]

CASES = {
    "defaults": [],
    "all optional parts on": ALL_ON,
    "redis URL from a Secret": ["redis.urlSecret.name=redis-url", "networkPolicy.enabled=true"],
    "unsigned, no metrics port": ["signing.allowUnsigned=true", "metricsPort=0"],
    "object storage": OBJECT_STORAGE,
}


@pytest.mark.parametrize("sets", CASES.values(), ids=CASES.keys())
def test_rendered_manifests_validate_against_kubernetes_schemas(sets: list[str]) -> None:
    docs = render(*sets)
    assert docs
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            continue  # a CRD: checked in its own test
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("sets", CASES.values(), ids=CASES.keys())
def test_helm_lint(sets: list[str]) -> None:
    arguments = ["lint", str(CHART), "--strict"]
    for item in sets:
        arguments += ["--set", item]
    assert "0 chart(s) failed" in helm(*arguments)


def test_defaults_make_a_hardened_signed_deployment() -> None:
    kinds = by_kind(render())
    assert set(kinds) == {
        "Deployment",
        "Service",
        "Secret",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    deployment = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    readiness = container["readinessProbe"]
    assert readiness["httpGet"]["path"] == "/ready"
    # Out of the endpoints before the server stops serving (SHUTDOWN_DELAY).
    env_delay = float(container_env(deployment)["PIXELPIPE_SHUTDOWN_DELAY"])
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < env_delay
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert "resources" in container and container["resources"]["limits"]["memory"]
    # Grace period covers the readiness delay plus the drain.
    env = container_env(deployment)
    # libvips' threads are set, not left to the node's CPU count, which a
    # container sees whole and the memory budget would count a thread each.
    assert env["VIPS_CONCURRENCY"] == "1"
    assert pod["terminationGracePeriodSeconds"] >= float(env["PIXELPIPE_SHUTDOWN_DELAY"]) + float(
        env["PIXELPIPE_SHUTDOWN_TIMEOUT"]
    )
    # Signing on by default: key and salt from the chart-made Secret, random hex.
    secret = kinds["Secret"]
    for variable, key in (("PIXELPIPE_KEY", "key"), ("PIXELPIPE_SALT", "salt")):
        reference = env[variable]["secretKeyRef"]
        assert reference == {"name": secret["metadata"]["name"], "key": key}
        assert re.fullmatch(r"[0-9a-f]{64}", secret["stringData"][key])
    # Replicas come from the autoscaler, which targets this Deployment.
    assert "replicas" not in deployment["spec"]
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        kinds["Service"]["spec"]["selector"],
        kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()
    ports = {p["name"]: p["targetPort"] for p in kinds["Service"]["spec"]["ports"]}
    assert ports == {"http": "http", "metrics": "metrics"}


def test_every_env_variable_is_a_setting_the_server_reads() -> None:
    deployment = by_kind(render(*ALL_ON))["Deployment"]
    env = container_env(deployment)
    known = {f"PIXELPIPE_{spec.name}" for spec in SETTINGS}
    # libvips' own thread count, which libvips reads.
    libvips_threads = env.pop("VIPS_CONCURRENCY")
    assert libvips_threads == "1"
    # OpenTelemetry's own variables, which its SDK reads (proxy.tracing).
    otel = {name for name in env if name.startswith("OTEL_")}
    assert otel == {
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_EXPORTER_OTLP_HEADERS",
    }
    assert env["OTEL_EXPORTER_OTLP_HEADERS"]["secretKeyRef"]["name"] == "otel-headers"
    assert set(env) - otel <= known, set(env) - otel - known
    plain = {
        name: value
        for name, value in env.items()
        if isinstance(value, str) and not name.startswith("OTEL_")
    }
    # The values parse: the pod would start with them (fake hex for the Secret's).
    settings = Settings.from_env(plain | {"PIXELPIPE_KEY": "aa" * 32, "PIXELPIPE_SALT": "bb" * 32})
    assert settings.workers == 2 and settings.log_format == "json"
    assert settings.metrics_port == 9464 and settings.shutdown_delay == 5
    assert settings.redis_url == "redis://redis:6379/0" and settings.auto_webp is True
    assert settings.s_maxage == 31_536_000 and settings.stale_while_revalidate == 86400
    assert settings.open_telemetry_enable is True


def test_optional_parts() -> None:
    kinds = by_kind(render(*ALL_ON))
    assert "Secret" not in kinds  # the existing Secret is used
    assert "HorizontalPodAutoscaler" not in kinds
    assert kinds["Deployment"]["spec"]["replicas"] == 2
    env = container_env(kinds["Deployment"])
    assert env["PIXELPIPE_KEY"]["secretKeyRef"]["name"] == "pixelpipe-keys"

    ingress = kinds["Ingress"]["spec"]
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": kinds["Service"]["metadata"]["name"], "port": {"name": "http"}}
    assert ingress["tls"][0]["secretName"] == "img-tls"

    monitor = kinds["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = kinds["Service"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}

    policy = kinds["NetworkPolicy"]["spec"]
    internet = policy["egress"][0]["to"][0]["ipBlock"]
    assert internet["cidr"] == "0.0.0.0/0"
    for blocked in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"):
        assert blocked in internet["except"]
    dns = policy["egress"][1]
    assert {p["port"] for p in dns["ports"]} == {53}
    redis_rule = policy["egress"][2]
    assert redis_rule["to"][0]["podSelector"]["matchLabels"] == {"app": "redis"}
    assert redis_rule["ports"] == [{"port": 6379, "protocol": "TCP"}]


def test_object_storage_values() -> None:
    kinds = by_kind(render(*OBJECT_STORAGE))
    deployment = kinds["Deployment"]
    env = container_env(deployment)
    plain = {
        name: value
        for name, value in env.items()
        if isinstance(value, str) and not name.startswith("OTEL_")
    }
    settings = Settings.from_env(
        plain | {"PIXELPIPE_GCS_KEY": "{}", "PIXELPIPE_ABS_KEY": "a2V5"}  # the Secrets' parts
    )
    assert settings.use_s3 and settings.use_gcs and settings.use_abs
    assert settings.result_storage == "s3://results/pixelpipe"
    assert settings.s3_endpoint == "http://minio.storage:9000" and settings.abs_name == "photos"
    assert env["PIXELPIPE_GCS_KEY"]["secretKeyRef"] == {"name": "gcs-key", "key": "key.json"}
    assert env["PIXELPIPE_ABS_KEY"]["secretKeyRef"] == {"name": "abs-key", "key": "key"}
    pod = deployment["spec"]["template"]["spec"]
    # AWS_* credentials from a Secret, as the SDKs' standard variables.
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "s3-keys"}}]
    account = kinds["ServiceAccount"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/pixelpipe"
    }
    # Off by default: no storage settings at all.
    assert not any("S3" in name or "STORAGE" in name for name in container_env(
        by_kind(render())["Deployment"]
    ))  # fmt: skip


def test_unsigned_only_when_asked() -> None:
    kinds = by_kind(render("signing.allowUnsigned=true"))
    assert "Secret" not in kinds
    assert "PIXELPIPE_KEY" not in container_env(kinds["Deployment"])
    notes = helm(
        "install", "img", str(CHART), "--dry-run=client", "--set", "signing.allowUnsigned=true"
    )
    assert "WARNING: signing.allowUnsigned" in notes


def test_notes_tell_how_to_sign_a_first_url() -> None:
    notes = helm("install", "img", str(CHART), "--dry-run=client", "--namespace", "media")
    notes = notes.split("NOTES:", 1)[1]
    assert "get secret img-pixelpipe-signing" in notes
    assert "pixelpipe sign --key" in notes and "/rs:fill:300:200/" in notes
    assert "port-forward svc/img-pixelpipe" in notes


def test_values_are_documented_line_by_line() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        if not re.match(r"\s*[A-Za-z_][\w.]*:", line):
            continue  # comments, blank lines, list items
        above = lines[number - 1].strip() if number else ""
        # A comment directly above (or the last line of a multi-line comment).
        if not above.startswith("#"):
            undocumented.append(line.strip())
    assert undocumented == []


def _bytes(quantity: str) -> int:
    from proxy.settings import parse_size

    return parse_size(quantity)


def test_memory_limit_covers_what_the_workers_can_hold() -> None:
    """Per worker: idle + caches + budget + queued sources, times workers (docs/deploy.md)."""
    deployment = by_kind(render())["Deployment"]
    env = container_env(deployment)
    settings = Settings.from_env(
        {name: value for name, value in env.items() if isinstance(value, str)}
    )
    # Measured: BENCHMARKS.md, "Runtime"; and what the first smart crop (OpenCV,
    # 24 MiB resident after it) and the first JPEG XL (libjxl's plugin, 7) load for good.
    idle, queued_sources = (80 + 24 + 7) * 2**20, 50 * 2**20
    per_worker = (
        idle
        + settings.result_cache_bytes
        + settings.source_cache_bytes
        + settings.memory_budget
        + queued_sources
    )
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert _bytes(resources["limits"]["memory"]) >= settings.workers * per_worker
    assert settings.memory_budget == 192 * 2**20 and settings.allocator == "auto"
