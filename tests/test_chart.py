"""The Helm chart, driven through the real helm binary: lint, rendered values, clear failures,
values.schema.json, and every rendered manifest validated offline against the Kubernetes and
Gateway API schemas.

helm is found through $HELM, then PATH, then the cache dir that .ci/chart.sh fills
(${XDG_CACHE_HOME:-~/.cache}/release-server-tools, or $RELEASE_SERVER_TOOLS).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "chart"
CI_VALUES = sorted(p.name for p in (CHART / "ci").glob("*.yaml"))
TOOLS = Path(
    os.environ.get("RELEASE_SERVER_TOOLS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "release-server-tools"
)
NODE_MODULES = TOOLS / "node" / "node_modules"
RELEASE = "rs"
FULLNAME = "rs-release-server"
TOKEN = "chart-test-token-7c0ffee"
SALT = "chart-test-salt-0123456789"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current one.
KUBE_VERSIONS = ("1.25", "1.35")
GATEWAY_KINDS = {
    "gateway.networking.k8s.io/v1/HTTPRoute": (
        "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute"
    ),
    "monitoring.coreos.com/v1/ServiceMonitor": (
        "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor"
    ),
}
# Reads a JSON list of manifests on stdin; validates each with its @kubernetes-models class.
NODE_VALIDATE = """
import { readFileSync } from "node:fs";
const models = JSON.parse(process.argv[1]);
const errors = [];
for (const doc of JSON.parse(readFileSync(0, "utf8"))) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  if (!models[key]) { errors.push(`${key}: no validator`); continue; }
  const cls = Object.values(await import(models[key]))[0];
  try { new cls(doc).validate(); } catch (e) { errors.push(`${key}: ${e.message}`); }
}
console.log(JSON.stringify(errors));
"""


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where .ci/chart.sh must have installed it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI runs .ci/chart.sh before the tests)")
    pytest.skip(reason)


def _find_helm() -> str | None:
    candidates = [os.environ.get("HELM"), shutil.which("helm"), str(TOOLS / "bin" / "helm")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


HELM = _find_helm()


@pytest.fixture(scope="session")
def helm() -> str:
    if HELM is None:
        _unavailable("helm not found: set HELM, put helm on PATH, or run .ci/chart.sh")
    return HELM


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run(
        [HELM, *args], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )


def _value_args(values: tuple[str, ...], sets: tuple[str, ...]) -> list[str]:
    args = []
    for name in values:
        args += ["--values", str(CHART / "ci" / name)]
    for item in sets:
        flag, _, assignment = item.partition(":") if item.startswith("string:") else ("", "", item)
        args += ["--set-string" if flag else "--set", assignment]
    return args


@functools.cache
def _render(values: tuple[str, ...], sets: tuple[str, ...]) -> tuple[str, list[dict[str, Any]]]:
    result = _run("template", RELEASE, str(CHART), *_value_args(values, sets))
    assert result.returncode == 0, result.stderr
    return result.stdout, [d for d in yaml.safe_load_all(result.stdout) if d]


def render(*values: str, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Render the chart with ci/ values files and --set items ("string:k=v" for --set-string)."""
    return _render(values, sets)[1]


def render_text(*values: str, sets: tuple[str, ...] = ()) -> str:
    return _render(values, sets)[0]


def render_fails(*sets: str, flags: tuple[str, ...] = ()) -> str:
    """Render with --set items that must fail; return helm's error output."""
    result = _run("template", RELEASE, str(CHART), *flags, *_value_args((), sets))
    assert result.returncode != 0, f"rendering with {sets} should fail:\n{result.stdout}"
    return result.stderr


def find(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = find(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_spec(docs)["containers"]
    assert [c["name"] for c in containers] == ["release-server"]
    return containers[0]


def env(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(docs)["env"]}


def config(docs: list[dict[str, Any]]) -> dict[str, str]:
    return one(docs, "ConfigMap")["data"]


def pod_annotations(docs: list[dict[str, Any]]) -> dict[str, str]:
    return one(docs, "Deployment")["spec"]["template"]["metadata"].get("annotations", {})


def volumes(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_spec(docs)["volumes"]}


def mounts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container(docs)["volumeMounts"]}


def ci_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((CHART / "ci" / name).read_text(encoding="utf-8"))


def chart_meta() -> dict[str, Any]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))


# --- lint and offline schema validation ---------------------------------------------------


def test_ci_values_cover_the_documented_cases():
    expected = {
        "ingress-tls-values.yaml",
        "httproute-values.yaml",
        "existing-secret-values.yaml",
        "existing-claim-values.yaml",
        "no-persistence-values.yaml",
        "rwx-replicas-values.yaml",
        "custom-probes-values.yaml",
        "resources-env-values.yaml",
        "metrics-values.yaml",
        "access-values.yaml",
        "s3-replicas-values.yaml",
    }
    assert expected <= set(CI_VALUES)


@pytest.mark.parametrize("values", [None, *CI_VALUES])
def test_helm_lint_strict(helm, values):
    args = ["--values", str(CHART / "ci" / values)] if values else []
    result = _run("lint", "--strict", str(CHART), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def _validate_core(doc: dict[str, Any]) -> list[str]:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    errors = []
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            errors.append(f"{doc['kind']} (k8s {version}) {where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(error.message)
    return errors


def _validate_models(docs: list[dict[str, Any]]) -> list[str]:
    if not docs:
        return []
    if not (NODE_MODULES / "@kubernetes-models" / "gateway-api").is_dir():
        _unavailable(f"@kubernetes-models validators not installed in {TOOLS / 'node'}")
    if shutil.which("node") is None:
        _unavailable("node not found")
    result = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_VALIDATE, json.dumps(GATEWAY_KINDS)],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        cwd=NODE_MODULES.parent,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def validate_offline(docs: list[dict[str, Any]]) -> list[str]:
    """Errors of every manifest: core kinds against the Kubernetes schemas (strict: unknown
    fields are errors), Gateway API / Prometheus Operator kinds against their models."""
    errors: list[str] = []
    models = []
    for doc in docs:
        if f"{doc['apiVersion']}/{doc['kind']}" in GATEWAY_KINDS:
            models.append(doc)
        else:
            errors += _validate_core(doc)
    return errors + _validate_models(models)


@pytest.mark.parametrize("values", [None, *CI_VALUES])
def test_rendered_manifests_validate_offline(helm, values):
    docs = render(*([values] if values else []))
    assert validate_offline(docs) == []


def test_offline_validation_catches_mistakes(helm):
    docs = render("httproute-values.yaml", "metrics-values.yaml")
    typo = json.loads(json.dumps(one(docs, "Deployment")))
    typo["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFs"] = True
    errors = validate_offline([typo])
    assert any("'readOnlyRootFs' was unexpected" in e for e in errors), errors
    wrong_type = json.loads(json.dumps(one(docs, "Deployment")))
    wrong_type["spec"]["replicas"] = "one"
    errors = validate_offline([wrong_type])
    assert any("spec.replicas: 'one' is not of type" in e for e in errors), errors

    route = json.loads(json.dumps(one(docs, "HTTPRoute")))
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = "http"
    assert any("port must be integer" in e for e in validate_offline([route]))
    monitor = json.loads(json.dumps(one(docs, "ServiceMonitor")))
    monitor["spec"]["endpoints"] = "http"
    assert any("endpoints" in e for e in validate_offline([monitor]))


def test_httproute_is_gateway_api_v1(helm):
    route = one(render("httproute-values.yaml"), "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"


# --- failures with a clear message -----------------------------------------------------------


def test_ingress_and_httproute_together_fail(helm):
    error = render_fails("ingress.enabled=true", "httpRoute.enabled=true")
    assert "ingress.enabled and httpRoute.enabled are both true" in error
    assert "not both" in error


@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadWriteOncePod"])
def test_replicas_on_a_single_writer_volume_fail(helm, mode):
    error = render_fails("replicaCount=2", f"persistence.accessMode={mode}")
    assert f"replicaCount is 2 but persistence.accessMode is {mode}" in error
    assert "ReadWriteMany" in error


def test_replicas_on_an_existing_readwriteonce_claim_fail(helm):
    error = render_fails("replicaCount=3", "persistence.existingClaim=packages")
    assert "replicaCount is 3 but persistence.accessMode is ReadWriteOnce" in error


def test_replicas_without_persistence_fail(helm):
    error = render_fails("replicaCount=2", "persistence.enabled=false")
    assert "replicaCount is 2 but persistence.enabled is false" in error


def test_token_and_existing_secret_together_fail(helm):
    error = render_fails(f"auth.token={TOKEN}", "auth.existingSecret=mine")
    assert "auth.token and auth.existingSecret are both set" in error


@pytest.mark.parametrize(
    ("sets", "where", "why"),
    [
        (("replicaCount=two",), "/replicaCount", "want integer"),
        (("replicaCount=-1",), "/replicaCount", "minimum"),
        (("replicaCount=1.5",), "/replicaCount", "want integer"),
        (("image.pullPolicy=Sometimes",), "/image/pullPolicy", "Always"),
        (("image.digest=latest",), "/image/digest", "does not match pattern"),
        (("service.port=0",), "/service/port", "minimum"),
        (("service.port=70000",), "/service/port", "maximum"),
        (("service.type=Headless",), "/service/type", "ClusterIP"),
        (("string:ingress.enabled=yes",), "/ingress/enabled", "want boolean"),
        (("persistence.accessMode=ReadOnlyMany",), "/persistence/accessMode", "ReadWriteMany"),
        (("persistence.size=lots",), "/persistence/size", "does not match pattern"),
        (("config.maxPackages=-1",), "/config/maxPackages", "minimum"),
        (("string:config.maxPackages=ten",), "/config/maxPackages", "want null or integer"),
        (("config.maxUploadSize=2X",), "/config/maxUploadSize", "does not match pattern"),
        (("config.logLevel=verbose",), "/config/logLevel", "debug"),
        (("config.repository=packages",), "/config/repository", "does not match pattern"),
        (("config.publicUrl=releases.example.com",), "/config/publicUrl", "pattern"),
        (("config.trustProxy=maybe",), "/config/trustProxy", "auto"),
        (("config.workers=0",), "/config/workers", "minimum"),
        (("livenessProbe.periodSeconds=0",), "/livenessProbe/periodSeconds", "minimum"),
        (("livenessProbe.successThreshold=2",), "/livenessProbe/successThreshold", "1"),
        (("string:readinessProbe.timeoutSeconds=3s",), "/readinessProbe/timeoutSeconds", "want"),
        (("readinessProbe.failureThreshold=0",), "/readinessProbe/failureThreshold", "minimum"),
        (("tmpDir.medium=Disk",), "/tmpDir/medium", "Memory"),
        (("auth.token=too-short",), "/auth/token", "minLength: got 9, want 16"),
        (("auth.token=sixteen chars but spaces",), "/auth/token", "does not match pattern"),
        (("auth.checksumSalt=salty",), "/auth/checksumSalt", "minLength: got 5, want 16"),
        (("auth.private=yes",), "/auth/private", "want boolean"),
        (("auth.private={acme}",), "/auth/private/0", "does not match pattern"),
        (("auth.tokensSecret=Not_A_Name",), "/auth/tokensSecret", "does not match pattern"),
        (("replicas=2",), "", "additional properties 'replicas' not allowed"),
        (("persistence.sizee=1Gi",), "/persistence", "additional properties 'sizee'"),
        (("storage.s3.bucket=Not_A_Bucket",), "/storage/s3/bucket", "pattern"),
        (("storage.s3.endpoint=minio:9000",), "/storage/s3/endpoint", "pattern"),
        (("string:storage.s3.enabled=yes",), "/storage/s3/enabled", "want boolean"),
    ],
)
def test_schema_rejects_bad_values(helm, sets, where, why):
    error = render_fails(*sets)
    assert "values don't meet the specifications of the schema" in error
    lines = [x for x in error.splitlines() if f"at '{where}'" in x]
    assert lines, error
    # anyOf failures list each alternative's reason on a line of its own.
    assert any(why in line for line in lines), error


def test_schema_accepts_the_documented_forms(helm):
    assert config(render(sets=("config.maxUploadSize=0",)))["MAX_UPLOAD_SIZE"] == "0"
    docs = render(
        sets=(
            "config.trustProxy=true",
            "string:config.maxUploadSize=512MiB",
            "image.digest=sha256:" + "a" * 64,
            "persistence.accessMode=ReadWriteOncePod",
        )
    )
    assert config(docs)["MAX_UPLOAD_SIZE"] == "512MiB"


def test_scoped_tokens_and_private_reads(helm):
    docs = render(str(CHART / "ci" / "access-values.yaml"))
    assert env(docs)["TOKENS_FILE"] == "/etc/release-server/tokens/tokens"
    assert mounts(docs)["/etc/release-server/tokens"] == {
        "name": "tokens", "mountPath": "/etc/release-server/tokens", "readOnly": True
    }  # fmt: skip
    secret = volumes(docs)["tokens"]["secret"]
    assert secret["secretName"] == "release-server-tokens"
    assert secret["items"] == [{"key": "tokens.txt", "path": "tokens"}]
    assert config(docs)["PRIVATE"] == "acme/*,local/packages"
    assert config(render(sets=("auth.private=true",)))["PRIVATE"] == "1"
    defaults = render()
    assert "PRIVATE" not in config(defaults) and "TOKENS_FILE" not in env(defaults)
    assert "tokens" not in volumes(defaults)


# --- the pod -------------------------------------------------------------------------------


def test_pod_is_locked_down(helm):
    docs = render()
    pod = pod_spec(docs)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 65532
    assert pod["fsGroup"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container(docs)["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_spec(docs)["automountServiceAccountToken"] is False
    assert pod_spec(docs)["enableServiceLinks"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False


def test_pod_has_writable_data_and_tmp(helm):
    docs = render()
    assert mounts(docs)["/data"]["name"] == "data"
    assert mounts(docs)["/tmp"]["name"] == "tmp"
    assert not mounts(docs)["/data"].get("readOnly")
    assert volumes(docs)["data"]["persistentVolumeClaim"] == {"claimName": FULLNAME}
    assert volumes(docs)["tmp"]["emptyDir"] == {}
    variables = env(docs)
    assert variables["STORAGE_PATH"] == "/data"
    assert variables["TMPDIR"] == "/tmp"
    assert variables["HOST"] == "0.0.0.0"
    assert variables["PORT"] == "8000"
    assert container(docs)["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_default_claim_and_recreate_strategy(helm):
    docs = render()
    claim = one(docs, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == FULLNAME
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "storageClassName" not in claim["spec"]
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert one(docs, "Deployment")["spec"]["replicas"] == 1


def test_storage_class_dash_means_no_class(helm):
    claim = one(render(sets=("persistence.storageClass=-",)), "PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == ""
    claim = one(render(sets=("persistence.storageClass=fast",)), "PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == "fast"


def test_two_replicas_on_readwritemany(helm):
    docs = render("rwx-replicas-values.yaml")
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    claim = one(docs, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == "nfs-client"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "podAntiAffinity" in pod_spec(docs)["affinity"]


def test_replicas_on_a_bucket_need_no_claim(helm):
    docs = render("s3-replicas-values.yaml")
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert find(docs, "PersistentVolumeClaim") == []
    assert volumes(docs)["data"] == {"name": "data", "emptyDir": {}}
    data = config(docs)
    assert data["STORAGE_URL"] == "s3://releases/prod/packages"
    assert data["AWS_ENDPOINT_URL"] == "http://seaweedfs-s3.storage.svc:8333"
    assert data["AWS_DEFAULT_REGION"] == "us-east-1"
    variables = env(docs)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert variables[name] == {"secretKeyRef": {"name": "release-server-s3", "key": name}}
    assert "AWS_ACCESS_KEY_ID" not in data and "AWS_SECRET_ACCESS_KEY" not in data


def test_a_bucket_without_a_secret_uses_the_pods_identity(helm):
    docs = render(sets=("storage.s3.enabled=true", "storage.s3.bucket=packages",
                        "storage.s3.secretAccessKeyKey=secret"))  # fmt: skip
    assert config(docs)["STORAGE_URL"] == "s3://packages"
    assert "AWS_ENDPOINT_URL" not in config(docs)
    assert "AWS_SECRET_ACCESS_KEY" not in env(docs)
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_a_bucket_needs_a_name(helm):
    error = render_fails("storage.s3.enabled=true")
    assert "storage.s3.bucket is empty" in error


def test_existing_claim(helm):
    docs = render("existing-claim-values.yaml")
    assert find(docs, "PersistentVolumeClaim") == []
    assert volumes(docs)["data"]["persistentVolumeClaim"] == {"claimName": "release-packages"}
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}


def test_persistence_off(helm):
    docs = render("no-persistence-values.yaml")
    assert find(docs, "PersistentVolumeClaim") == []
    assert volumes(docs)["data"] == {"name": "data", "emptyDir": {}}
    assert volumes(docs)["tmp"]["emptyDir"] == {"sizeLimit": "1Gi"}
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_image_defaults_to_app_version(helm):
    app_version = chart_meta()["appVersion"]
    repository = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))["image"][
        "repository"
    ]
    assert container(render())["image"] == f"{repository}:{app_version}"
    docs = render(sets=("image.repository=registry.local/rs", "image.tag=9.9.9"))
    assert container(docs)["image"] == "registry.local/rs:9.9.9"
    digest = "sha256:" + "b" * 64
    assert container(render(sets=(f"image.digest={digest}",)))["image"].endswith(f"@{digest}")


def test_app_version_is_the_server_version():
    init = (ROOT / "release_server" / "__init__.py").read_text(encoding="utf-8")
    version = re.search(r'__version__ = "([^"]+)"', init)
    assert version is not None
    assert chart_meta()["appVersion"] == version.group(1)


# --- the token -----------------------------------------------------------------------------


def test_token_value_goes_to_a_secret_mounted_as_a_file(helm):
    sets = (f"auth.token={TOKEN}",)
    docs = render(sets=sets)
    secret = one(docs, "Secret")
    assert secret["metadata"]["name"] == FULLNAME
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN
    variables = env(docs)
    assert "AUTH_TOKEN" not in variables
    assert variables["AUTH_TOKEN_FILE"] == "/etc/release-server/auth/token"
    assert mounts(docs)["/etc/release-server/auth"] == {
        "name": "auth",
        "mountPath": "/etc/release-server/auth",
        "readOnly": True,
    }
    assert volumes(docs)["auth"]["secret"]["secretName"] == FULLNAME
    assert volumes(docs)["auth"]["secret"]["items"] == [{"key": "token", "path": "token"}]


def test_token_never_appears_outside_its_secret(helm):
    text = render_text(sets=(f"auth.token={TOKEN}",))
    encoded = base64.b64encode(TOKEN.encode()).decode()
    for document in text.split("\n---\n"):
        if "\nkind: Secret\n" in document:
            assert TOKEN not in document
            continue
        assert TOKEN not in document
        assert encoded not in document


def test_existing_secret(helm):
    docs = render("existing-secret-values.yaml")
    assert find(docs, "Secret") == []
    secret = volumes(docs)["auth"]["secret"]
    assert secret["secretName"] == "release-server-token"
    assert secret["items"] == [{"key": "upload-token", "path": "token"}]
    assert env(docs)["AUTH_TOKEN_FILE"] == "/etc/release-server/auth/token"
    assert "checksum/secret" not in pod_annotations(docs)


def secret_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in one(docs, "Secret")["data"].items()}


def test_no_token_given_means_a_generated_one(helm):
    docs = render()
    secret = one(docs, "Secret")
    assert secret["metadata"]["name"] == FULLNAME
    token = secret_data(docs)["token"]
    assert re.fullmatch(r"[A-Za-z0-9]{40}", token), token
    assert volumes(docs)["auth"]["secret"]["secretName"] == FULLNAME
    assert volumes(docs)["auth"]["secret"]["items"] == [{"key": "token", "path": "token"}]
    assert env(docs)["AUTH_TOKEN_FILE"] == "/etc/release-server/auth/token"
    # Random on every render without a cluster (no lookup): not a constant of the chart.
    again = _run("template", RELEASE, str(CHART), "--show-only", "templates/secret.yaml")
    assert again.returncode == 0, again.stderr
    assert secret_data([yaml.safe_load(again.stdout)])["token"] != token
    # The server takes it as it is in the Secret (the key auth.secretKey).
    docs = render(sets=("auth.secretKey=upload-token",))
    assert re.fullmatch(r"[A-Za-z0-9]{40}", secret_data(docs)["upload-token"])
    assert volumes(docs)["auth"]["secret"]["items"] == [{"key": "upload-token", "path": "token"}]


def test_given_token_or_existing_secret_wins_over_generating(helm):
    assert secret_data(render(sets=(f"auth.token={TOKEN}",)))["token"] == TOKEN
    docs = render("existing-secret-values.yaml")
    assert find(docs, "Secret") == []
    assert volumes(docs)["auth"]["secret"]["secretName"] == "release-server-token"


@pytest.mark.parametrize("token", ["fifteen-chars-x", "sixteen chars ok", "tab\tin-the-token"])
def test_short_or_unprintable_token_fails_with_a_message(helm, token):
    # values.schema.json refuses it first ...
    error = render_fails(f"auth.token={token}")
    assert "values don't meet the specifications of the schema" in error
    assert "at '/auth/token'" in error
    # ... and the template too, for --skip-schema-validation (and a clearer message).
    error = render_fails(f"auth.token={token}", flags=("--skip-schema-validation",))
    assert f"auth.token is {len(token)} characters long" in error
    assert "at least 16 printable ASCII characters" in error


def test_schema_says_token_min_length_16():
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    forms = schema["properties"]["auth"]["properties"]["token"]["anyOf"]
    assert {"const": ""} in forms
    assert any(form.get("minLength") == 16 for form in forms)
    assert secret_data(render(sets=("auth.token=" + "x" * 16,)))["token"] == "x" * 16


def chart_with_secret_in_cluster(tmp_path: Path, data: dict[str, str]) -> Path:
    """A copy of the chart whose lookup of its own Secret finds one holding `data` (what
    `helm upgrade` sees; `helm template` has no cluster, so lookup always finds nothing)."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    helpers = copy / "templates" / "_helpers.tpl"
    text = helpers.read_text(encoding="utf-8")
    found = {
        "apiVersion": "v1",
        "kind": "Secret",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    fake = "{{- `" + json.dumps(found) + "` }}"
    text, count = re.subn(
        r'(\{\{- define "release-server\.currentSecret" -\}\}\n)\{\{- lookup "v1" "Secret" '
        r'\.Release\.Namespace \(include "release-server\.fullname" \.\) \| toJson \}\}\n',
        lambda m: m.group(1) + fake + "\n",
        text,
    )
    assert count == 1, "the currentSecret helper no longer looks up the chart's Secret"
    helpers.write_text(text, encoding="utf-8")
    return copy


def render_chart(chart: Path, *sets: str) -> list[dict[str, Any]]:
    result = _run("template", RELEASE, str(chart), *_value_args((), sets))
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_upgrade_keeps_the_generated_token_and_salt(helm, tmp_path):
    """The lookup branch: on upgrade the token and salt already in the Secret are kept."""
    kept = "K" * 40
    chart = chart_with_secret_in_cluster(tmp_path, {"token": kept, "checksum-salt": SALT})
    first = render_chart(chart)
    assert secret_data(first) == {"token": kept, "checksum-salt": SALT}
    assert pod_annotations(first) == pod_annotations(render_chart(chart))
    # An explicit auth.token replaces the kept one (rotation); the salt stays.
    rotated = render_chart(chart, f"auth.token={TOKEN}")
    assert secret_data(rotated) == {"token": TOKEN, "checksum-salt": SALT}
    assert pod_annotations(rotated)["checksum/secret"] != pod_annotations(first)["checksum/secret"]
    # A Secret from before the salt existed: the token is kept, a salt is added.
    old = render_chart(chart_with_secret_in_cluster(tmp_path / "old", {"token": kept}))
    assert secret_data(old)["token"] == kept
    assert re.fullmatch(r"[A-Za-z0-9]{32}", secret_data(old)["checksum-salt"])
    # A different auth.secretKey finds no token under that key: a new one is generated.
    other = secret_data(render_chart(chart, "auth.secretKey=upload-token"))
    assert re.fullmatch(r"[A-Za-z0-9]{40}", other["upload-token"])
    assert other["upload-token"] != kept


def test_secret_is_read_back_with_lookup():
    """What the test above stands in for: the chart's own Secret, in its namespace."""
    helpers = (CHART / "templates" / "_helpers.tpl").read_text(encoding="utf-8")
    assert (
        'lookup "v1" "Secret" .Release.Namespace (include "release-server.fullname" .)' in helpers
    )
    secret = (CHART / "templates" / "secret.yaml").read_text(encoding="utf-8")
    assert 'include "release-server.authSecret"' in secret


def test_checksums_roll_the_pod_on_config_and_secret_changes(helm):
    salted = (f"auth.checksumSalt={SALT}",)
    base = pod_annotations(render(sets=(f"auth.token={TOKEN}", *salted)))
    same = pod_annotations(render(sets=(f"auth.token={TOKEN}", "config.workers=1", *salted)))
    config_changed = pod_annotations(
        render(sets=(f"auth.token={TOKEN}", "config.maxPackages=3", *salted))
    )
    token_changed = pod_annotations(render(sets=("auth.token=another-token-0123456", *salted)))
    assert re.fullmatch(r"[0-9a-f]{64}", base["checksum/config"])
    assert re.fullmatch(r"[0-9a-f]{64}", base["checksum/secret"])
    assert same == base
    assert config_changed["checksum/config"] != base["checksum/config"]
    assert config_changed["checksum/secret"] == base["checksum/secret"]
    assert token_changed["checksum/secret"] != base["checksum/secret"]
    assert token_changed["checksum/config"] == base["checksum/config"]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_secret_checksum_is_salted(helm):
    """checksum/secret must not let a Deployment reader test token guesses offline."""
    sets: tuple[str, ...] = (f"auth.token={TOKEN}",)
    shown = _run(
        "template",
        RELEASE,
        str(CHART),
        "--show-only",
        "templates/secret.yaml",
        "--show-only",
        "templates/deployment.yaml",
        *_value_args((), sets),
    )
    assert shown.returncode == 0, shown.stderr
    secret_text, deployment_text = shown.stdout.split("\n---\n")
    checksum = pod_annotations([yaml.safe_load(deployment_text)])["checksum/secret"]
    assert checksum not in {_sha256(TOKEN), _sha256(TOKEN + "\n")}
    # The Secret manifest as `include "secret.yaml"` gives it, give or take the newlines
    # around it (helm prints it after "---" and "# Source: ...").
    manifest = secret_text.split("# Source: release-server/templates/secret.yaml\n", 1)[1]
    manifest = manifest.strip("\n")
    hashes = {_sha256(a + manifest + b) for a in ("", "\n") for b in ("", "\n")}
    assert checksum not in hashes
    sets = (f"auth.token={TOKEN}", f"auth.checksumSalt={SALT}")
    checksum = pod_annotations(render(sets=sets))["checksum/secret"]
    # It is the salt from the Secret with the token, in the generated case too: the Secret
    # and the Deployment see the same random values.
    for docs in (render(sets=sets), render()):
        data = secret_data(docs)
        assert pod_annotations(docs)["checksum/secret"] == _sha256(
            f"{data['checksum-salt']}\n{data['token']}"
        )
    assert secret_data(render(sets=sets))["checksum-salt"] == SALT
    # A different salt gives a different value for the same token.
    other = pod_annotations(render(sets=(f"auth.token={TOKEN}", "auth.checksumSalt=" + "z" * 16)))
    assert other["checksum/secret"] != checksum


# --- configuration -------------------------------------------------------------------------


def test_default_config(helm):
    docs = render()
    assert config(docs) == {
        "MAX_UPLOAD_SIZE": "2G",
        "TRUST_PROXY": "0",
        "REPOSITORY": "local/packages",
        "LOG_LEVEL": "info",
        "WORKERS": "1",
    }
    assert container(docs)["envFrom"] == [{"configMapRef": {"name": FULLNAME}}]


@pytest.mark.parametrize(
    ("sets", "rendered", "limits"),
    [
        ((), {}, (0, 3)),
        (("config.maxPackages=10",), {"MAX_PACKAGES": "10"}, (10, 0)),
        (("config.maxVersions=5",), {"MAX_VERSIONS": "5"}, (0, 5)),
        (("config.maxPackages=20", "config.maxVersions=2"),
         {"MAX_PACKAGES": "20", "MAX_VERSIONS": "2"}, (20, 2)),
        (("config.maxVersions=0",), {"MAX_VERSIONS": "0"}, (0, 0)),
    ],
)  # fmt: skip
def test_retention_values_reach_the_server(helm, sets, rendered, limits):
    """null leaves the server's defaults (3 versions per family, no cap); a chart that
    sets only maxPackages keeps the earlier retention exactly."""
    data = config(render(sets=sets))
    assert {k: v for k, v in data.items() if k in ("MAX_PACKAGES", "MAX_VERSIONS")} == rendered
    config_module = pytest.importorskip("release_server.config")
    settings = config_module.load_settings(env=data)
    assert (settings.package_limit, settings.version_limit) == limits


def test_allowed_hosts_value(helm):
    data = config(render(sets=("config.allowedHosts={releases.example.com,*.corp.example}",)))
    assert data["ALLOWED_HOSTS"] == "releases.example.com,*.corp.example"
    assert "ALLOWED_HOSTS" not in config(render())


def test_resources_extra_env_and_settings(helm):
    values = ci_values("resources-env-values.yaml")
    docs = render("resources-env-values.yaml")
    assert container(docs)["resources"] == values["resources"]
    for item in values["extraEnv"]:
        assert item in container(docs)["env"]
    assert container(docs)["envFrom"][1:] == values["extraEnvFrom"]
    assert config(docs) == {
        "MAX_PACKAGES": "0",
        "MAX_UPLOAD_SIZE": "8G",
        "TRUST_PROXY": "0",
        "REPOSITORY": "acme/templates",
        "LOG_LEVEL": "debug",
        "WORKERS": "2",
    }
    assert volumes(docs)["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}
    template = one(docs, "Deployment")["spec"]["template"]["metadata"]
    assert template["annotations"]["example.com/owner"] == "platform-team"
    assert template["labels"]["team"] == "platform"


def test_probes_use_health_endpoints_and_values(helm):
    values = ci_values("custom-probes-values.yaml")
    docs = render("custom-probes-values.yaml")
    for name, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        probe = container(docs)[name]
        assert probe["httpGet"] == {"path": path, "port": "http"}
        for key, value in values[name].items():
            assert probe[key] == value, (name, key)
    defaults = container(render())
    assert defaults["livenessProbe"]["periodSeconds"] == 10
    assert defaults["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_probes_can_be_disabled(helm):
    docs = render(sets=("livenessProbe.enabled=false", "readinessProbe.enabled=false"))
    assert "livenessProbe" not in container(docs)
    assert "readinessProbe" not in container(docs)


def test_service_selects_the_server_pods(helm):
    docs = render(sets=(f"auth.token={TOKEN}",))
    service = one(docs, "Service")
    assert service["metadata"]["name"] == FULLNAME
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert one(docs, "Deployment")["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_node_port(helm):
    service = one(render("metrics-values.yaml"), "Service")
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 30080


# --- exposure ------------------------------------------------------------------------------


def test_ingress_with_tls(helm):
    docs = render("ingress-tls-values.yaml")
    ingress = one(docs, "Ingress")
    assert find(docs, "HTTPRoute") == []
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["releases.example.com"], "secretName": "releases-example-com-tls"}
    ]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "releases.example.com"
    assert rule["http"]["paths"] == [
        {
            "path": "/",
            "pathType": "Prefix",
            "backend": {"service": {"name": FULLNAME, "port": {"name": "http"}}},
        }
    ]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert config(docs)["TRUST_PROXY"] == "1"
    assert config(docs)["PUBLIC_URL"] == "https://releases.example.com"


def test_httproute(helm):
    docs = render("httproute-values.yaml")
    assert find(docs, "Ingress") == []
    route = one(docs, "HTTPRoute")
    assert route["spec"]["parentRefs"] == [
        {"name": "shared-gateway", "namespace": "gateway-system", "sectionName": "https"}
    ]
    assert route["spec"]["hostnames"] == ["releases.example.com"]
    assert route["spec"]["rules"] == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "timeouts": {"request": "600s"},
            "backendRefs": [{"name": FULLNAME, "port": 80}],
        }
    ]
    assert config(docs)["TRUST_PROXY"] == "1"


def test_trust_proxy_can_be_forced(helm):
    assert config(render(sets=("config.trustProxy=true",)))["TRUST_PROXY"] == "1"
    docs = render("ingress-tls-values.yaml", sets=("config.trustProxy=false",))
    assert config(docs)["TRUST_PROXY"] == "0"


# --- metrics -------------------------------------------------------------------------------


def test_metrics_off_by_default(helm):
    docs = render()
    assert find(docs, "ServiceMonitor") == []
    assert not any(k.startswith("prometheus.io/") for k in pod_annotations(docs))


def test_metrics_scrape_annotations_and_service_monitor(helm):
    docs = render("metrics-values.yaml")
    annotations = pod_annotations(docs)
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}
    ]
    service = one(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


# --- helm test and NOTES -------------------------------------------------------------------


def test_helm_test_hook_checks_healthz_through_the_service(helm):
    docs = render()
    pods = find(docs, "Pod")
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    test_container = pod["spec"]["containers"][0]
    assert test_container["image"] == container(docs)["image"]
    service = one(docs, "Service")
    url = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/healthz"
    assert test_container["command"] == [
        "python3",
        "-I",
        "-S",
        "/app/release-server.pyz",
        "healthcheck",
        "--url",
        url,
    ]
    assert test_container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["restartPolicy"] == "Never"
    # The Service must not send traffic to the test pod.
    selector = service["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items()
    assert find(render(sets=("tests.enabled=false",)), "Pod") == []


def notes(*args: str) -> str:
    result = _run("install", RELEASE, str(CHART), "--dry-run=client", "--namespace", "apps", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_explain_how_to_reach_it_and_upload(helm):
    text = notes("--set", f"auth.token={TOKEN}")
    assert f"kubectl port-forward --namespace apps svc/{FULLNAME} 8000:80" in text
    assert f"kubectl get secret --namespace apps {FULLNAME}" in text
    assert '-F file=@my-tool-1.0.0.tar.gz "$RELEASE_SERVER_URL/upload"' in text
    assert "$RELEASE_SERVER_URL/latest" in text
    assert "helm test --namespace apps rs" in text
    assert '"$RELEASE_SERVER_URL/OWNER/REPO/releases/download/v1.0.0/my-tool-1.0.0.tar.gz"' in text
    assert 'api_url = "$RELEASE_SERVER_URL/api/v3"' in text
    assert TOKEN not in text


def test_notes_with_ingress_and_without_token(helm):
    text = notes("--values", str(CHART / "ci" / "ingress-tls-values.yaml"))
    assert "export RELEASE_SERVER_URL=https://releases.example.com" in text
    text = notes("--values", str(CHART / "ci" / "httproute-values.yaml"))
    assert "export RELEASE_SERVER_URL=http://releases.example.com" in text
    assert "Gateway's listener terminates TLS" in text
    text = notes("--set", "persistence.enabled=false")
    assert "persistence is disabled" in text


def test_notes_tell_how_to_read_the_token(helm):
    read = "-o jsonpath='{.data.%s}' | base64 -d"
    text = notes()
    assert "The chart generated the upload token" in text
    assert f"kubectl get secret --namespace apps {FULLNAME} " + read % "token" in text
    text = notes("--values", str(CHART / "ci" / "existing-secret-values.yaml"))
    assert (
        "kubectl get secret --namespace apps release-server-token " + read % "upload-token" in text
    )
    text = notes("--set", "auth.existingSecret=mine", "--set", "auth.secretKey=upload.token")
    assert "kubectl get secret --namespace apps mine " + read % "upload\\.token" in text
    text = notes("--set", f"auth.token={TOKEN}")
    assert f"kubectl get secret --namespace apps {FULLNAME} " + read % "token" in text
    assert TOKEN not in text


# --- the server accepts what the chart gives it ----------------------------------------------


def chart_environment(docs: list[dict[str, Any]], tmp_path: Path) -> dict[str, str]:
    """The server's environment in the pod (ConfigMap + literal env), with the pod's paths
    mapped into tmp_path and the token file written from the chart's Secret."""
    variables = dict(config(docs))
    variables.update({e["name"]: e["value"] for e in container(docs)["env"] if "value" in e})
    for name in ("STORAGE_PATH", "TMPDIR"):
        local = tmp_path / variables[name].strip("/")
        local.mkdir(parents=True, exist_ok=True)
        variables[name] = str(local)
    if "AUTH_TOKEN_FILE" in variables:
        secrets = find(docs, "Secret")
        key = volumes(docs)["auth"]["secret"]["items"][0]["key"]
        token = base64.b64decode(secrets[0]["data"][key]) if secrets else b"from-existing-secret"
        token_file = tmp_path / "token"
        token_file.write_bytes(token)
        variables["AUTH_TOKEN_FILE"] = str(token_file)
    return variables


@pytest.mark.parametrize("values", [None, *CI_VALUES])
def test_server_settings_accept_the_chart_environment(helm, values, tmp_path):
    config_module = pytest.importorskip("release_server.config")
    docs = render(*([values] if values else []))
    variables = chart_environment(docs, tmp_path)
    settings = config_module.load_settings(env=variables)
    assert settings.port == 8000
    assert settings.host == "0.0.0.0"
    assert settings.max_packages == (
        int(variables["MAX_PACKAGES"]) if "MAX_PACKAGES" in variables else None
    )
    assert settings.trust_proxy is (variables["TRUST_PROXY"] == "1")
    assert bool(settings.auth_token) is ("AUTH_TOKEN_FILE" in variables)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_runs_with_the_chart_environment(helm, tmp_path):
    """Start the server (source tree) with the pod's environment; probe it as the kubelet,
    the helm test pod, Prometheus and an uploader would."""
    requests = pytest.importorskip("requests")
    docs = render("ingress-tls-values.yaml", sets=("metrics.scrapeAnnotations=true",))
    port = _free_port()
    variables = chart_environment(docs, tmp_path)
    variables.update(HOST="127.0.0.1", PORT=str(port), PYTHONUNBUFFERED="1")
    inherited = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN", "CONFIG_PATH")}
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "release_server"],
        cwd=ROOT,
        env={**inherited, **variables},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "server did not start"
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        for probe in ("livenessProbe", "readinessProbe"):
            path = container(docs)[probe]["httpGet"]["path"]
            assert requests.get(base + path, timeout=5).status_code == 200, probe

        # The helm test pod's command, with the source tree instead of the image's pyz.
        command = find(docs, "Pod")[0]["spec"]["containers"][0]["command"]
        assert command[:4] == ["python3", "-I", "-S", "/app/release-server.pyz"]
        args = [re.sub(r"^http://[^/]+", base, arg) for arg in command[4:]]
        check = subprocess.run(
            [sys.executable, "-m", "release_server", *args],
            cwd=ROOT,
            env=inherited,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr

        metrics_path = pod_annotations(docs)["prometheus.io/path"]
        assert requests.get(base + metrics_path, timeout=5).status_code == 200

        token = base64.b64decode(one(docs, "Secret")["data"]["token"]).decode()
        files = {"file": ("tool-1.0.tar.gz", b"package bytes")}
        wrong = {"Authorization": "Bearer wrong"}
        assert (
            requests.post(base + "/upload", files=files, headers=wrong, timeout=10).status_code
            == 401
        )
        right = {"Authorization": f"Bearer {token}"}
        assert (
            requests.post(base + "/upload", files=files, headers=right, timeout=10).status_code
            == 200
        )
        latest = requests.get(base + "/latest", timeout=5).json()
        url = latest["assets"][0]["browser_download_url"]
        assert url.startswith(variables["PUBLIC_URL"] + "/"), url
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stdout:
            server.stdout.close()


# --- documentation -------------------------------------------------------------------------


def _leaves(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Documented keys: scalars, lists and empty maps, by their dotted path."""
    found = {}
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            found.update(_leaves(value, path))
        else:
            found[path] = value
    return found


def _readme_rows() -> dict[str, list[str]]:
    text = (CHART / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([A-Za-z0-9_.]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_readme_documents_every_value():
    values = _leaves(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8")))
    rows = _readme_rows()
    missing = sorted(set(values) - set(rows))
    assert missing == [], f"values missing from chart/README.md: {missing}"
    stale = sorted(set(rows) - set(values))
    assert stale == [], f"chart/README.md documents values that do not exist: {stale}"
    for key, value in values.items():
        if not isinstance(value, dict | list):
            assert rows[key][1] == f"`{json.dumps(value)}`", f"default of {key} in README"


def test_readme_has_oci_install_upgrade_uninstall():
    text = (CHART / "README.md").read_text(encoding="utf-8")
    assert "helm install release-server oci://ghcr.io/<owner>/charts/release-server" in text
    assert "helm upgrade release-server oci://ghcr.io/<owner>/charts/release-server" in text
    assert "helm uninstall release-server" in text


def _publish_workflow() -> str:
    return (ROOT / ".github" / "workflows" / "release-server-publish.yaml").read_text(
        encoding="utf-8"
    )


def test_default_image_is_the_one_the_publish_workflow_pushes():
    """The workflow pushes ghcr.io/<lower-cased repository owner>/release-server; the default
    is that image for the repository Chart.yaml names as home and source."""
    workflow = _publish_workflow()
    assert "IMAGE: ghcr.io/${{ needs.test.outputs.owner }}/release-server" in workflow
    assert 'echo "owner=${GITHUB_REPOSITORY_OWNER,,}"' in workflow
    meta = chart_meta()
    home = re.fullmatch(r"https://github\.com/([a-z0-9-]+)/([A-Za-z0-9_.-]+)", meta["home"])
    assert home is not None, meta["home"]
    assert meta["sources"] == [meta["home"]]
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert values["image"]["repository"] == f"ghcr.io/{home.group(1)}/release-server"


def _helm_installs(markdown: str) -> list[str]:
    """Each `helm install` command of the markdown's sh blocks, continuation lines joined,
    with the placeholders spelled one way (OWNER/VERSION as <owner>/<version>)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip().startswith("helm install"):
                command = command.replace("OWNER", "<owner>").replace("VERSION", "<version>")
                commands.append(" ".join(command.split()))
    return commands


def _install_settings(command: str) -> tuple[str, frozenset[str]]:
    """The chart reference and the --set assignments of a `helm install` command."""
    words = command.split()
    chart = next(w for w in words if w.startswith("oci://"))
    sets = frozenset(words[i + 1] for i, w in enumerate(words) if w == "--set")
    return chart, sets


def test_chart_readme_install_is_complete_and_agrees_with_the_readme():
    chart_readme = (CHART / "README.md").read_text(encoding="utf-8")
    ours = _helm_installs(chart_readme)
    assert ours, "no helm install command in chart/README.md"
    image = "image.repository=ghcr.io/<owner>/release-server"
    for command in ours:
        # The image: the default names the project's own; a fork's chart needs its image.
        assert f"--set {image}" in command, command
        assert "--version <version>" in command, command
        assert "--namespace releases" in command, command
    # The top-level README's Helm section installs the way one of chart/README.md's commands does.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Helm (Kubernetes)", 1)[1].split("\n## ", 1)[0]
    theirs = _helm_installs(section)
    assert theirs, "no helm install command in README.md's Helm section"
    ours_settings = {_install_settings(c) for c in ours}
    for command in theirs:
        assert _install_settings(command) in ours_settings, command
