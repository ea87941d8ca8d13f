{{- define "pixelpipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pixelpipe.fullname" -}}
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

{{- define "pixelpipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pixelpipe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pixelpipe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "pixelpipe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret holding the signing key and salt: given, or made by this chart. */}}
{{- define "pixelpipe.signingSecret" -}}
{{- if .Values.signing.existingSecret }}
{{- .Values.signing.existingSecret }}
{{- else if not .Values.signing.allowUnsigned }}
{{- printf "%s-signing" (include "pixelpipe.fullname" .) }}
{{- end }}
{{- end }}

{{/*
A value for the chart-made signing Secret: the one in values, else the one
already in the cluster (so upgrades keep it), else a new random one. Sprig
has no hex encoder; 64 random decimal digits are valid hex (212 bits).
*/}}
{{- define "pixelpipe.signingValue" -}}
{{- $root := index . 0 }}{{- $given := index . 1 }}{{- $secretKey := index . 2 }}
{{- if $given }}
{{- $given }}
{{- else }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (include "pixelpipe.signingSecret" $root) }}
{{- if and $existing (hasKey $existing.data $secretKey) }}
{{- index $existing.data $secretKey | b64dec }}
{{- else }}
{{- randNumeric 64 }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pixelpipe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pixelpipe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}
