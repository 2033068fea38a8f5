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
{{- include "clinops.selector" (dict "name" "clinops-operator" "context" .) -}}
{{- end -}}

{{/* The names of the data services; every one carries the release's fullname, so two releases never clash. */}}
{{- define "clinops.minioName" -}}
{{- printf "%s-minio" (include "clinops.fullname" .) -}}
{{- end -}}

{{- define "clinops.mlflowName" -}}
{{- printf "%s-mlflow" (include "clinops.fullname" .) -}}
{{- end -}}

{{- define "clinops.postgresqlName" -}}
{{- printf "%s-postgresql" (include "clinops.fullname" .) -}}
{{- end -}}

{{/* The Secret of MinIO's root credentials: the user's own, or the one the chart generates. */}}
{{- define "clinops.minioRootSecret" -}}
{{- .Values.minio.auth.existingSecret | default (include "clinops.minioName" .) -}}
{{- end -}}

{{/* The Secret the platform's workloads read S3 credentials from (AWS_* keys, so it serves as an envFrom source). */}}
{{- define "clinops.s3ClientSecret" -}}
{{- printf "%s-s3-client" (include "clinops.fullname" .) -}}
{{- end -}}

{{- define "clinops.postgresqlSecret" -}}
{{- .Values.postgresql.auth.existingSecret | default (include "clinops.postgresqlName" .) -}}
{{- end -}}

{{- define "clinops.mlflowAuthSecret" -}}
{{- .Values.mlflow.auth.existingSecret | default (printf "%s-auth" (include "clinops.mlflowName" .)) -}}
{{- end -}}

{{/* In-cluster URLs of the chart's services, the defaults of the matching endpoints. */}}
{{- define "clinops.minioUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "clinops.minioName" .) .Release.Namespace (int .Values.minio.service.apiPort) -}}
{{- end -}}

{{- define "clinops.mlflowUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "clinops.mlflowName" .) .Release.Namespace (int .Values.mlflow.service.port) -}}
{{- end -}}

{{/* The endpoints the operator is given: an explicit value wins, else the chart's own service when it runs one. */}}
{{- define "clinops.endpoint.mlflow" -}}
{{- if .Values.endpoints.mlflow -}}{{ .Values.endpoints.mlflow }}{{- else if .Values.mlflow.enabled -}}{{ include "clinops.mlflowUrl" . }}{{- end -}}
{{- end -}}

{{- define "clinops.endpoint.s3" -}}
{{- if .Values.endpoints.s3 -}}{{ .Values.endpoints.s3 }}{{- else if .Values.minio.enabled -}}{{ include "clinops.minioUrl" . }}{{- end -}}
{{- end -}}

{{- define "clinops.endpoint.lake" -}}
{{- if .Values.endpoints.lake -}}{{ .Values.endpoints.lake }}{{- else if .Values.minio.enabled -}}{{ printf "s3://%s" .Values.minio.buckets.lake }}{{- end -}}
{{- end -}}

{{/* Strimzi names the bootstrap Service of Kafka <name> "<name>-kafka-bootstrap"; 9092 is the chart's plain listener. */}}
{{- define "clinops.endpoint.kafka" -}}
{{- if .Values.endpoints.kafka -}}{{ .Values.endpoints.kafka }}{{- else if include "clinops.kafkaPresent" . -}}{{ printf "%s-kafka-bootstrap:9092" (include "clinops.kafkaName" .) }}{{- end -}}
{{- end -}}

{{/* Ingestion runs where it has both ends: a Kafka (the chart's or endpoints.kafka) and a lake (MinIO or endpoints.lake). */}}
{{- define "clinops.ingestionEnabled" -}}
{{- $setting := toString .Values.ingestion.enabled -}}
{{- $ends := and (include "clinops.endpoint.kafka" .) (include "clinops.endpoint.lake" .) -}}
{{- if and (eq $setting "true") (not $ends) -}}
{{- fail "ingestion.enabled=true needs a Kafka (Strimzi or endpoints.kafka) and a lake (minio.enabled or endpoints.lake)" -}}
{{- end -}}
{{- if or (eq $setting "true") (and (eq $setting "auto") $ends) -}}
true
{{- end -}}
{{- end -}}

{{/* Selector labels of a chart component: name = the component, instance = the release. */}}
{{- define "clinops.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .context.Release.Name | quote }}
{{- end -}}

{{/*
A generated secret value that survives upgrades: the value already in the cluster when there is one, a fresh random
one otherwise. Called with (dict "context" $ "secret" name "key" key "length" n).
*/}}
{{- define "clinops.keptSecretValue" -}}
{{- $found := lookup "v1" "Secret" .context.Release.Namespace .secret -}}
{{- if and $found $found.data (hasKey $found.data .key) -}}
{{- index $found.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (int .length) -}}
{{- end -}}
{{- end -}}

{{/* The uid and gid of the platform image's processes (operator, ingestion, MLflow). */}}
{{- define "clinops.platformUid" -}}
10001
{{- end -}}

{{/*
The pod securityContext of the restricted Pod Security Standard, run as (dict "uid" n): the volumes' group is the
same id unless "noFsGroup" is set; "fsGroupChangePolicy" is passed on when given.
*/}}
{{- define "clinops.restrictedPod" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
{{- if not .noFsGroup }}
fsGroup: {{ .uid }}
{{- end }}
{{- with .fsGroupChangePolicy }}
fsGroupChangePolicy: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Environment variables read from one Secret, called with (dict "secret" name "vars" (list (list ENV_NAME key) ...)).
*/}}
{{- define "clinops.secretEnv" -}}
{{- range .vars }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ $.secret }}
      key: {{ index . 1 }}
{{- end }}
{{- end -}}

{{/* MinIO's root credentials, for the server and the bucket Job. */}}
{{- define "clinops.minioRootEnv" -}}
{{- $auth := .Values.minio.auth -}}
{{- include "clinops.secretEnv" (dict "secret" (include "clinops.minioRootSecret" .) "vars" (list (list "MINIO_ROOT_USER" $auth.rootUserKey) (list "MINIO_ROOT_PASSWORD" $auth.rootPasswordKey))) -}}
{{- end -}}

{{/* The ConfigMap of one dashboard file, called with (dict "context" $ "path" path-of-the-json). */}}
{{- define "clinops.dashboardName" -}}
{{- printf "%s-dashboard-%s" (include "clinops.fullname" .context) (base .path | trimSuffix ".json") -}}
{{- end -}}

{{/* The container securityContext of the restricted Pod Security Standard. */}}
{{- define "clinops.restrictedContainer" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
readOnlyRootFilesystem: true
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "clinops.image.of" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* MLflow's image: the platform image unless one is named, so the server's MLflow is the clients' own. */}}
{{- define "clinops.mlflowImage" -}}
{{- if .Values.mlflow.image.repository -}}
{{- include "clinops.image.of" (dict "repository" .Values.mlflow.image.repository "tag" (required "mlflow.image.tag is required with mlflow.image.repository" .Values.mlflow.image.tag)) -}}
{{- else -}}
{{- include "clinops.image" . -}}
{{- end -}}
{{- end -}}
