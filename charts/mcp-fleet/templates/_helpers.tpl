{{- define "mcp-fleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mcp-fleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "mcp-fleet.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "mcp-fleet.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "mcp-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-fleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "mcp-fleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mcp-fleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mcp-fleet
{{- end }}

{{- define "mcp-fleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mcp-fleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mcp-fleet.peeringName" -}}
{{- default (include "mcp-fleet.fullname" .) .Values.peering.name }}
{{- end }}

{{- define "mcp-fleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
What the operator needs cluster-wide, whatever it watches: kopf reads CRDs (resource discovery) and
namespaces; with every namespace watched, its peering is a ClusterKopfPeering.
*/}}
{{- define "mcp-fleet.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
# Whether the cluster has a default StorageClass (a managed Redis is persistent by default when it has).
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list]
{{- if not .Values.watchNamespaces }}
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}

{{/*
What the operator needs where it watches McpServers: in every namespace (a ClusterRole) or in each listed
namespace (a Role).
*/}}
{{- define "mcp-fleet.namespacedRules" -}}
# McpServers: watched, annotated by kopf (progress), status written.
- apiGroups: [mcpfleet.dev]
  resources: [mcpservers]
  verbs: [get, list, watch, patch, update]
- apiGroups: [mcpfleet.dev]
  resources: [mcpservers/status]
  verbs: [get, patch, update]
# Children, applied server-side (create happens through patch) and removed when no longer wanted. Every kind
# is watched (only objects labelled as the operator's), so that one deleted comes back and one edited is put
# back; Secrets are read for the generated values and the digests that roll pods when a referenced one changes.
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, secrets, configmaps]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies, ingresses]
  verbs: [get, list, watch, create, patch, delete]
# spec.expose.gateway: an HTTPRoute (the Gateway API's CRDs, when the cluster has them).
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# Kubernetes Events about McpServers; the Warnings about Redis pods that cannot start (RedisReady says why).
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch, list]
# The managed Redis's pods, read for the RedisReady condition (one that cannot start makes it False).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
# kopf peering between operator replicas, when only some namespaces are watched.
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
