{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "snowplow-mini-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "snowplow-mini-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "snowplow-mini-operator.labels" -}}
{{ include "snowplow-mini-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "snowplow-mini-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "snowplow-mini-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag of one entry of .Values.images; an empty tag is the chart's appVersion. */}}
{{- define "snowplow-mini-operator.image" -}}
{{- $image := index .root.Values.images .name -}}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{/*
What the operator does, derived from operator/snowplow_operator (kube.py, reconciling.py,
handlers.py, sweeping.py): it reads SnowplowMinis, writes their status and deletes the ones
whose expiry has passed (the operator-level sweeper); it watches its children
(label-filtered watches still need list and watch on the whole kind) and server-side applies
them (patch, plus create for an object not there yet); it deletes only Deployments, Services
and Jobs (Kibana switched off, a Job whose template changed); it reads Secrets named by
apiKeySecretRef; it posts core/v1 Events. blockOwnerDeletion on the children's owner
references needs update on snowplowminis/finalizers where OwnerReferencesPermissionEnforcement
is on. It never deletes Secrets, ConfigMaps or PVCs and never watches PVCs.
*/}}
{{- define "snowplow-mini-operator.namespacedRules" -}}
- apiGroups: [snowplowmini.dev]
  resources: [snowplowminis]
  verbs: [get, list, watch, delete]
- apiGroups: [snowplowmini.dev]
  resources: [snowplowminis/status]
  verbs: [patch]
- apiGroups: [snowplowmini.dev]
  resources: [snowplowminis/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps, secrets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
