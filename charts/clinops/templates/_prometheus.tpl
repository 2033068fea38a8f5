{{/* Discovery of the release namespace's pods, for every scrape job of the in-namespace Prometheus. */}}
{{- define "clinops.podDiscovery" -}}
kubernetes_sd_configs:
  - role: pod
    namespaces:
      names: [{{ .Release.Namespace | quote }}]
{{- end -}}

{{/* The scrape job of one app's named port, named after the app: (list $ appName portName). */}}
{{- define "clinops.scrapeJob" -}}
{{- $root := index . 0 -}}
- job_name: {{ index . 1 }}
  {{- include "clinops.podDiscovery" $root | nindent 2 }}
  relabel_configs:
    - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name, __meta_kubernetes_pod_container_port_name]
      regex: {{ printf "%s;%s" (index . 1) (index . 2) | quote }}
      action: keep
    {{- include "clinops.scrapeLabels" . | nindent 4 }}
{{- end -}}

{{/* The target labels a ServiceMonitor or PodMonitor would give, so the alerts and dashboards read the same. */}}
{{- define "clinops.scrapeLabels" -}}
- source_labels: [__meta_kubernetes_namespace]
  target_label: namespace
- source_labels: [__meta_kubernetes_pod_name]
  target_label: pod
- source_labels: [__meta_kubernetes_pod_container_name]
  target_label: container
{{- end -}}

{{- define "clinops.prometheusConfig" -}}
global:
  scrape_interval: {{ .Values.monitoring.scrapeInterval }}
  evaluation_interval: {{ .Values.monitoring.scrapeInterval }}
# Relative to this file: both are keys of the one ConfigMap.
rule_files:
  - alerts.yaml
scrape_configs:
  {{- include "clinops.scrapeJob" (list . "clinops-operator" "metrics") | nindent 2 }}
  {{- include "clinops.scrapeJob" (list . "clinops-ingest" "metrics") | nindent 2 }}
  {{- if .Values.monitoring.mlflow }}
  {{- include "clinops.scrapeJob" (list . "mlflow" "http") | nindent 2 }}
  {{- end }}
  # Model servers: the operator names each one's Service after its ModelDeployment, the pods' instance label.
  - job_name: clinops-model-server
    {{- include "clinops.podDiscovery" . | nindent 4 }}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name, __meta_kubernetes_pod_container_port_name]
        regex: "clinops-model-server;http"
        action: keep
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_instance]
        target_label: service
      {{- include "clinops.scrapeLabels" . | nindent 6 }}
  # Flink's reporter port is not declared on its container: every discovered port of a drift job's Flink container
  # is rewritten to it, and the identical targets that leaves are one.
  - job_name: clinops-flink
    {{- include "clinops.podDiscovery" . | nindent 4 }}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name, __meta_kubernetes_pod_container_name]
        regex: "clinops-drift;flink-main-container"
        action: keep
      - source_labels: [__meta_kubernetes_pod_ip]
        regex: "(.+)"
        replacement: {{ printf "$1:%d" (int .Values.monitoring.flinkMetricsPort) | quote }}
        target_label: __address__
      {{- include "clinops.scrapeLabels" . | nindent 6 }}
{{- end -}}
