{{/* Names and labels, the usual way. */}}
{{- define "podsnoop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "podsnoop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "podsnoop.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "podsnoop.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "podsnoop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podsnoop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "podsnoop.labels" -}}
{{ include "podsnoop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "podsnoop.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The agent's command line, one list item per word. Flags of features being
built in parallel (attribution, shipping, block I/O, fs) are named here and
nowhere else, so renaming one is a one-line change.
*/}}
{{- define "podsnoop.args" -}}
- --listen
- {{ printf ":%d" (int .Values.metrics.port) | quote }}
{{- with .Values.tracers }}
- --tracers
- {{ join "," . | quote }}
{{- end }}
{{- range $tracer, $method := .Values.hooks }}
- --hook
- {{ printf "%s=%s" $tracer $method | quote }}
{{- end }}
{{- if .Values.excludeHost }}
- --exclude-host
{{- end }}
{{- range .Values.cgroups }}
- --cgroup
- {{ . | quote }}
{{- end }}
{{- with .Values.output }}
- --output
- {{ . | quote }}
{{- end }}
{{- if gt (int .Values.verbose) 0 }}
- {{ repeat (int .Values.verbose) "v" | printf "-%s" | quote }}
{{- end }}
{{- range .Values.filters.namespaces }}
- --namespace
- {{ . | quote }}
{{- end }}
{{- with .Values.filters.labelSelector }}
- --selector
- {{ . | quote }}
{{- end }}
{{- with .Values.metadata.criSocket }}
- --cri-socket
- {{ . | quote }}
{{- end }}
{{- if .Values.metadata.kubelet.enabled }}
- --kubelet
- {{ .Values.metadata.kubelet.url | quote }}
{{- if .Values.metadata.kubelet.insecureSkipVerify }}
- --kubelet-insecure
{{- end }}
{{- end }}
{{- if .Values.collector.url }}
{{- $c := .Values.collector }}
{{- if and (not $c.allowInsecure) (or (hasPrefix "http://" $c.url) (not (or $c.tokenSecret.name $c.clientCertSecret.name))) }}
{{- fail "collector.url: the chart ships only over https:// to a collector that authenticates the agent (collector.tokenSecret or collector.clientCertSecret): a collector without TLS or a token takes batches from anyone. collector.allowInsecure=true ships anyway" }}
{{- end }}
- --collector
- {{ .Values.collector.url | quote }}
{{- if .Values.collector.tokenSecret.name }}
- --collector-token-file
- /etc/podsnoop/collector/token
{{- end }}
{{- if .Values.collector.caSecret.name }}
- --collector-ca
- /etc/podsnoop/collector-ca/ca.crt
{{- end }}
{{- if .Values.collector.clientCertSecret.name }}
- --collector-cert
- /etc/podsnoop/collector-client/tls.crt
- --collector-key
- /etc/podsnoop/collector-client/tls.key
{{- end }}
{{- end }}
{{- if .Values.otlp.endpoint }}
- --otlp-endpoint
- {{ .Values.otlp.endpoint | quote }}
{{- if .Values.otlp.caSecret.name }}
- --otlp-ca
- /etc/podsnoop/otlp-ca/ca.crt
{{- end }}
{{- if .Values.otlp.clientCertSecret.name }}
- --otlp-cert
- /etc/podsnoop/otlp-client/tls.crt
- --otlp-key
- /etc/podsnoop/otlp-client/tls.key
{{- end }}
{{- end }}
{{- if or .Values.collector.url .Values.otlp.endpoint }}
- --spool-dir
- /var/lib/podsnoop/spool
- --spool-max-bytes
- {{ int64 .Values.spool.maxBytes | quote }}
{{- end }}
{{- with .Values.thresholds }}
{{- if not (kindIs "invalid" .bioMinUs) }}
- --bio-min-us
- {{ int64 .bioMinUs | quote }}
{{- end }}
{{- if not (kindIs "invalid" .fsMinUs) }}
- --fs-min-us
- {{ int64 .fsMinUs | quote }}
{{- end }}
{{- if not (kindIs "invalid" .interval) }}
- --interval
- {{ int64 .interval | quote }}
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" .Values.rateLimit) }}
- --rate-limit
- {{ .Values.rateLimit | toString | quote }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
Capabilities: docs/deployment.md ("Privileges, and why") says why each is there.
*/}}
{{- define "podsnoop.capabilities" -}}
drop:
  - ALL
add:
  - BPF
  - PERFMON
  - SYS_PTRACE
{{- if .Values.securityContext.legacyKernel }}
  - SYS_ADMIN
  - SYS_RESOURCE
{{- end }}
{{- range .Values.securityContext.extraCapabilities }}
  - {{ . }}
{{- end }}
{{- end -}}

{{/* The RBAC resource kubelet checks for GET /pods. */}}
{{- define "podsnoop.kubeletResource" -}}
{{- $r := .Values.metadata.kubelet.authzResource -}}
{{- if eq $r "auto" -}}
{{- if semverCompare ">=1.33.0-0" .Capabilities.KubeVersion.Version -}}nodes/pods{{- else -}}nodes/proxy{{- end -}}
{{- else -}}
{{- $r -}}
{{- end -}}
{{- end -}}

{{/* The collector Deployment's names and labels: apart from the agent's, so
neither the DaemonSet's selector nor its NetworkPolicy takes its pods. */}}
{{- define "podsnoop.collectorName" -}}
{{- printf "%s-collector" (include "podsnoop.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "podsnoop.collectorSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-collector" (include "podsnoop.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: collector
{{- end -}}

{{- define "podsnoop.collectorLabels" -}}
{{ include "podsnoop.collectorSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Secret with ClickHouse's URL and password: the user's, or the chart's. */}}
{{- define "podsnoop.clickhouseSecret" -}}
{{- .Values.collectorDeployment.clickhouse.existingSecret | default (printf "%s-clickhouse" (include "podsnoop.collectorName" .)) -}}
{{- end -}}

{{/* podsnoop-collector's command line (docs/clickhouse.md), one list item per word. */}}
{{- define "podsnoop.collectorArgs" -}}
{{- $d := .Values.collectorDeployment -}}
{{- $ch := $d.clickhouse -}}
- --listen
- {{ printf "0.0.0.0:%d" (int $d.port) | quote }}
- --clickhouse
- $(CLICKHOUSE_URL)
- --clickhouse-database
- {{ $ch.database | quote }}
{{- with $ch.user }}
- --clickhouse-user
- {{ . | quote }}
{{- end }}
- --clickhouse-password-file
- /etc/podsnoop/clickhouse/password
{{- if $ch.caSecret.name }}
- --clickhouse-ca
- /etc/podsnoop/clickhouse-ca/ca.crt
{{- end }}
- --clickhouse-timeout-ms
- {{ int64 $ch.timeoutMs | quote }}
{{- with $ch.cluster }}
- --clickhouse-cluster
- {{ . | quote }}
{{- end }}
{{- if $d.tokenSecret.name }}
- --token-file
- /etc/podsnoop/token/token
{{- end }}
{{- if $d.tlsSecret.name }}
- --tls-cert
- /etc/podsnoop/tls/tls.crt
- --tls-key
- /etc/podsnoop/tls/tls.key
{{- end }}
{{- range $d.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
