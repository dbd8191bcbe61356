{{/*
Named templates. Only the template subset that tools/helm_check.py renders is used in this chart:
fields, include, if/else/end, range over a map, quote, default, toYaml, nindent, printf, trunc, trimSuffix,
contains, not.
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
