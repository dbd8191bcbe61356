{{/*
Named templates. Only the template subset that tools/helm_check.py renders is used in this chart:
fields, include, if/else/end, range over a map, quote, default, toYaml, nindent, printf, trunc, trimSuffix,
contains, not, eq.
*/}}

{{/* The chart name, 63 characters at most (a DNS label). */}}
{{- define "see.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: fullnameOverride, the release name if it holds the chart name, or <release>-<chart>. */}}
{{- define "see.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "see.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "see.labels" -}}
helm.sh/chart: {{ include "see.chart" . }}
{{ include "see.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the pods (never change them on an installed release). */}}
{{- define "see.selectorLabels" -}}
app.kubernetes.io/name: {{ include "see.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service account the pods run as. */}}
{{- define "see.serviceAccountName" -}}
{{- if .Values.serviceAccount.name }}
{{- .Values.serviceAccount.name }}
{{- else }}
{{- if .Values.serviceAccount.create }}
{{- include "see.fullname" . }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret holding API_KEY, SERVICE_API_KEY, REDIS_PASSWORD and DATABASE_URL (made by the operator). */}}
{{- define "see.secretName" -}}
{{- if .Values.existingSecret.name }}
{{- .Values.existingSecret.name }}
{{- else }}
{{- include "see.fullname" . }}
{{- end }}
{{- end }}

{{/* The claim mounted at DATA_DIR. */}}
{{- define "see.dataClaimName" -}}
{{- if .Values.persistence.existingClaim }}
{{- .Values.persistence.existingClaim }}
{{- else }}
{{- include "see.fullname" . }}-data
{{- end }}
{{- end }}

{{/* The Dask scheduler's Deployment and Service: the full name, cut so the suffix fits in 63 characters. */}}
{{- define "see.daskSchedulerName" -}}
{{- include "see.fullname" . | trunc 48 | trimSuffix "-" }}-dask-scheduler
{{- end }}

{{/* The Dask workers' Deployment. */}}
{{- define "see.daskWorkerName" -}}
{{- include "see.fullname" . | trunc 51 | trimSuffix "-" }}-dask-worker
{{- end }}

{{/* DASK_SCHEDULER_ADDRESS: the chart's own scheduler when dask.enabled, else config.DASK_SCHEDULER_ADDRESS. */}}
{{- define "see.daskSchedulerAddress" -}}
{{- if .Values.dask.enabled -}}
tcp://{{ include "see.daskSchedulerName" . }}:{{ .Values.dask.scheduler.port }}
{{- else -}}
{{ .Values.config.DASK_SCHEDULER_ADDRESS }}
{{- end }}
{{- end }}

{{/* The image of the Dask pods: the server's unless dask.image says otherwise (workers import SEE's code). */}}
{{- define "see.daskImage" -}}
{{ .Values.dask.image.repository | default .Values.image.repository }}:{{ .Values.dask.image.tag | default .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Labels that select the Dask pods (with app.kubernetes.io/component): their own name, so the server's selector
never matches them. */}}
{{- define "see.daskSelectorLabels" -}}
app.kubernetes.io/name: {{ include "see.name" . | trunc 58 | trimSuffix "-" }}-dask
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every Dask object (each adds app.kubernetes.io/component). */}}
{{- define "see.daskLabels" -}}
helm.sh/chart: {{ include "see.chart" . }}
{{ include "see.daskSelectorLabels" . }}
app.kubernetes.io/part-of: {{ include "see.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
