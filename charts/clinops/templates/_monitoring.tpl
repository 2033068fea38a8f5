{{/*
Whether to render resources of a third-party API: (list setting "group/version/Kind" $). "true" forces, "false"
disables, "auto" asks the cluster (helm template sees an API only when given --api-versions).
*/}}
{{- define "clinops.present" -}}
{{- $setting := toString (index . 0) -}}
{{- if or (eq $setting "true") (and (eq $setting "auto") ((index . 2).Capabilities.APIVersions.Has (index . 1))) -}}
true
{{- end -}}
{{- end -}}

{{- define "clinops.kafkaName" -}}
{{- printf "%s-kafka" (include "clinops.fullname" .) -}}
{{- end -}}

{{- define "clinops.kafkaPresent" -}}
{{- include "clinops.present" (list .Values.kafka.enabled "kafka.strimzi.io/v1beta2/Kafka" .) -}}
{{- end -}}

{{- define "clinops.serviceMonitorsPresent" -}}
{{- include "clinops.present" (list .Values.monitoring.monitors "monitoring.coreos.com/v1/ServiceMonitor" .) -}}
{{- end -}}

{{- define "clinops.podMonitorsPresent" -}}
{{- include "clinops.present" (list .Values.monitoring.monitors "monitoring.coreos.com/v1/PodMonitor" .) -}}
{{- end -}}

{{- define "clinops.prometheusRulesPresent" -}}
{{- include "clinops.present" (list .Values.monitoring.prometheusRules "monitoring.coreos.com/v1/PrometheusRule" .) -}}
{{- end -}}

{{/* Labels of a monitoring object: the chart's, the component's and the ones a label-selecting Prometheus wants. */}}
{{- define "clinops.monitoringLabels" -}}
{{ include "clinops.labels" . }}
app.kubernetes.io/component: monitoring
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "clinops.prometheusName" -}}
{{- printf "%s-prometheus" (include "clinops.fullname" .) -}}
{{- end -}}

{{- define "clinops.grafanaName" -}}
{{- printf "%s-grafana" (include "clinops.fullname" .) -}}
{{- end -}}

{{/* Fails on a Kafka sizing no write could succeed under; both Kafka templates call it, whichever renders first. */}}
{{- define "clinops.kafkaSizing" -}}
{{- $kafka := .Values.kafka -}}
{{- if gt (int $kafka.replicationFactor) (int $kafka.replicas) -}}
{{- fail (printf "kafka.replicationFactor (%d) cannot exceed kafka.replicas (%d)" (int $kafka.replicationFactor) (int $kafka.replicas)) -}}
{{- end -}}
{{- if gt (int $kafka.minInsyncReplicas) (int $kafka.replicationFactor) -}}
{{- fail (printf "kafka.minInsyncReplicas (%d) cannot exceed kafka.replicationFactor (%d): no write could be acknowledged" (int $kafka.minInsyncReplicas) (int $kafka.replicationFactor)) -}}
{{- end -}}
{{- end -}}
