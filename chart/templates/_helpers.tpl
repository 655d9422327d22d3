{{/*
The chart name, or nameOverride.
*/}}
{{- define "release-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's resources (63 characters at most, a DNS label).
*/}}
{{- define "release-server.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "release-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "release-server.labels" -}}
helm.sh/chart: {{ include "release-server.chart" . }}
{{ include "release-server.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "release-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "release-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "release-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "release-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository plus digest when set, else tag (default: appVersion).
*/}}
{{- define "release-server.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/*
The Secret that holds the token: auth.existingSecret, else the one the chart creates.
*/}}
{{- define "release-server.secretName" -}}
{{- default (include "release-server.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/*
The chart's own Secret as it is in the cluster now (JSON; {} under `helm template`, `helm
lint`, `--dry-run=client` and on first install, where lookup finds nothing). Kept alone in
this helper so tests/test_chart.py can stand in for the cluster.
*/}}
{{- define "release-server.currentSecret" -}}
{{- lookup "v1" "Secret" .Release.Namespace (include "release-server.fullname" .) | toJson }}
{{- end }}

{{/*
The content of the chart-created Secret, as JSON {"token": ..., "salt": ...}:
- token: auth.token; else the token already in the Secret (an upgrade keeps it); else a new
  randAlphaNum 40 (first install).
- salt (the Secret's "checksum-salt" key, for the checksum/secret pod annotation):
  auth.checksumSalt; else the one already in the Secret; else a new randAlphaNum 32.
Worked out once per render and cached (in .Values, which every template of the chart shares),
so secret.yaml and the Deployment's checksum see the same random values.
*/}}
{{- define "release-server.authSecret" -}}
{{- if not (hasKey .Values "__releaseServerAuthSecret") }}
{{- $current := (include "release-server.currentSecret" . | fromJson).data | default dict }}
{{- $token := .Values.auth.token }}
{{- if not $token }}
{{- $token = get $current .Values.auth.secretKey | b64dec }}
{{- end }}
{{- if not $token }}
{{- $token = randAlphaNum 40 }}
{{- end }}
{{- $salt := .Values.auth.checksumSalt }}
{{- if not $salt }}
{{- $salt = get $current "checksum-salt" | b64dec }}
{{- end }}
{{- if not $salt }}
{{- $salt = randAlphaNum 32 }}
{{- end }}
{{- $_ := set .Values "__releaseServerAuthSecret" (dict "token" $token "salt" $salt) }}
{{- end }}
{{- get .Values "__releaseServerAuthSecret" | toJson }}
{{- end }}

{{/*
The checksum/secret pod annotation: sha256 of the salt and the token. It changes when the
token (or the salt) changes, so pods roll; without the salt, which only the Secret holds,
it cannot be used to check token guesses offline.
*/}}
{{- define "release-server.secretChecksum" -}}
{{- $auth := include "release-server.authSecret" . | fromJson }}
{{- printf "%s\n%s" $auth.salt $auth.token | sha256sum }}
{{- end }}

{{- define "release-server.claimName" -}}
{{- default (include "release-server.fullname" .) .Values.persistence.existingClaim }}
{{- end }}

{{/*
"true" when the pods can share their storage (a bucket, or a ReadWriteMany claim).
*/}}
{{- define "release-server.sharedStorage" -}}
{{- if .Values.storage.s3.enabled }}true
{{- else if and .Values.persistence.enabled (eq .Values.persistence.accessMode "ReadWriteMany") }}true{{ end }}
{{- end }}

{{/*
"true" when packages live on the claim (persistence on, no bucket).
*/}}
{{- define "release-server.claimUsed" -}}
{{- if and .Values.persistence.enabled (not .Values.storage.s3.enabled) }}true{{ end }}
{{- end }}

{{/*
STORAGE_URL of the bucket: s3://bucket or s3://bucket/prefix.
*/}}
{{- define "release-server.storageUrl" -}}
{{- $prefix := .Values.storage.s3.prefix | trimAll "/" }}
{{- printf "s3://%s%s" .Values.storage.s3.bucket (ternary (printf "/%s" $prefix) "" (ne $prefix "")) }}
{{- end }}

{{/*
TRUST_PROXY: "auto" turns it on behind an Ingress or an HTTPRoute.
*/}}
{{- define "release-server.trustProxy" -}}
{{- $trust := .Values.config.trustProxy }}
{{- if eq (toString $trust) "auto" }}
{{- $trust = or .Values.ingress.enabled .Values.httpRoute.enabled }}
{{- end }}
{{- if $trust }}1{{ else }}0{{ end }}
{{- end }}

{{/*
The base URL users reach the server at, for NOTES.txt ("" when only port-forward works).
*/}}
{{- define "release-server.url" -}}
{{- if .Values.config.publicUrl }}
{{- .Values.config.publicUrl | trimSuffix "/" }}
{{- else if .Values.ingress.enabled }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}{{ if has $host .hosts }}{{ $tls = true }}{{ end }}{{ end }}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host }}
{{- else if and .Values.httpRoute.enabled .Values.httpRoute.hostnames }}
{{- printf "http://%s" (first .Values.httpRoute.hostnames) }}
{{- end }}
{{- end }}

{{/*
Checks that values.schema.json cannot express; rendering fails with a clear message.
*/}}
{{- define "release-server.validate" -}}
{{- if and .Values.storage.s3.enabled (not .Values.storage.s3.bucket) }}
{{- fail "storage.s3.enabled is true but storage.s3.bucket is empty: name the bucket (it must exist)." }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.httpRoute.enabled }}
{{- fail "ingress.enabled and httpRoute.enabled are both true: expose release-server through an Ingress or a Gateway API HTTPRoute, not both. Set one of them to false." }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "release-server.sharedStorage" .)) }}
{{- if .Values.persistence.enabled }}
{{- fail (printf "replicaCount is %d but persistence.accessMode is %s: several replicas need a volume they can all write. Use persistence.accessMode=ReadWriteMany (with a storage class or existingClaim that supports it) or replicaCount=1." (int .Values.replicaCount) .Values.persistence.accessMode) }}
{{- else }}
{{- fail (printf "replicaCount is %d but persistence.enabled is false: each replica would keep its own packages. Enable persistence with accessMode=ReadWriteMany or use replicaCount=1." (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
{{- if and .Values.auth.token .Values.auth.existingSecret }}
{{- fail "auth.token and auth.existingSecret are both set: give the token in one place only." }}
{{- end }}
{{- with .Values.auth.token }}
{{- if or (lt (len .) 16) (not (regexMatch "^[!-~]+$" .)) }}
{{- fail (printf "auth.token is %d characters long: the server needs a token of at least 16 printable ASCII characters, without spaces. Leave auth.token empty and the chart generates one, or create it with e.g. openssl rand -hex 32." (len .)) }}
{{- end }}
{{- end }}
{{- with .Values.auth.checksumSalt }}
{{- if lt (len .) 16 }}
{{- fail (printf "auth.checksumSalt is %d characters long: use at least 16 random characters, or leave it empty." (len .)) }}
{{- end }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled is true but ingress.hosts is empty: list at least one host." }}
{{- end }}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled is true but httpRoute.parentRefs is empty: name the Gateway to attach to." }}
{{- end }}
{{- end }}
