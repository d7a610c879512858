{{- define "storefleet.labels" -}}
app.kubernetes.io/name: storefleet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: storefleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* (dict "ctx" $ "component" "operator") */}}
{{- define "storefleet.selector" -}}
app.kubernetes.io/name: storefleet
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "storefleet.common" -}}
app.kubernetes.io/part-of: storefleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "storefleet.image" -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end }}

{{- define "storefleet.redisURL" -}}
{{- if .Values.redis.url -}}{{ .Values.redis.url }}{{- else if .Values.redis.inChart -}}redis://{{ .Release.Name }}-redis.{{ .Release.Namespace }}.svc:6379/0{{- end -}}
{{- end }}

{{/* Restricted Pod Security: non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp. */}}
{{- define "storefleet.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "storefleet.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The generated ClusterRole rules (rbac/*.yaml, copied by make generate) without the Lease rules,
     which the chart grants in the release namespace only. */}}
{{- define "storefleet.clusterRules" -}}
{{- $role := .ctx.Files.Get .file | fromYaml -}}
{{- $rules := list -}}
{{- range $role.rules -}}
{{- if not (has "coordination.k8s.io" .apiGroups) -}}
{{- $rules = append $rules . -}}
{{- end -}}
{{- end -}}
{{- toYaml $rules -}}
{{- end }}
