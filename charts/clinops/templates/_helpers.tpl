{{/* The release's base name: the release name, cut to fit the longest suffix a child adds. */}}
{{- define "clinops.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "clinops.operatorName" -}}
{{- printf "%s-operator" (include "clinops.fullname" .) -}}
{{- end -}}

{{- define "clinops.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "clinops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: clinops
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "clinops.operatorSelector" -}}
app.kubernetes.io/name: clinops-operator
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}
