{{- define "storefleet.labels" -}}
app.kubernetes.io/name: storefleet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: storefleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
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
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
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

{{/* The stores repo and forge flags, the same for operator and API. */}}
{{- define "storefleet.gitArgs" -}}
- --git-url={{ .Values.git.url }}
- --git-branch={{ .Values.git.branch }}
- --git-path={{ .Values.git.path }}
- --git-workdir=/var/lib/storefleet/git
{{- if .Values.git.credentialsSecret }}
- --git-credentials-file=/etc/storefleet/git/credentials
{{- end }}
{{- if .Values.git.forge.kind }}
- --forge-kind={{ .Values.git.forge.kind }}
- --forge-url={{ required "git.forge.url is required with git.forge.kind" .Values.git.forge.url }}
- --forge-repo={{ required "git.forge.repo is required with git.forge.kind" .Values.git.forge.repo }}
- --forge-token-file=/etc/storefleet/forge/token
{{- end }}
{{- with include "storefleet.dashboardURL" . }}
- --dashboard-url={{ . }}
{{- end }}
{{- end }}

{{/* Where people open the dashboard (links in commit statuses and PR comments). */}}
{{- define "storefleet.dashboardURL" -}}
{{- if .Values.ingress.enabled -}}
{{ ternary "https" "http" .Values.ingress.tls.enabled }}://{{ .Values.ingress.host }}/
{{- end -}}
{{- end }}

{{/* Mounts of the Git working copies, credentials and forge token. */}}
{{- define "storefleet.gitMounts" -}}
- {name: git-work, mountPath: /var/lib/storefleet/git}
{{- if .Values.git.credentialsSecret }}
- {name: git-credentials, mountPath: /etc/storefleet/git, readOnly: true}
{{- end }}
{{- if .Values.git.forge.kind }}
- {name: forge-token, mountPath: /etc/storefleet/forge, readOnly: true}
{{- end }}
{{- end }}

{{- define "storefleet.gitVolumes" -}}
- name: git-work
  emptyDir: {}
{{- with .Values.git.credentialsSecret }}
- name: git-credentials
  secret:
    secretName: {{ . }}
    items: [{key: credentials, path: credentials}]
    defaultMode: 0400
{{- end }}
{{- if .Values.git.forge.kind }}
- name: forge-token
  secret:
    secretName: {{ required "git.forge.tokenSecret is required with git.forge.kind" .Values.git.forge.tokenSecret }}
    items: [{key: token, path: token}]
    defaultMode: 0400
{{- end }}
{{- end }}

{{/*
The domains stores may name (spec.domain), comma-separated, for the operator and the API alike:
allowedDomains, else the default store domain (storeDomain, or store.domain of storeValues);
empty lets both binaries default to the environment's store domain.
*/}}
{{- define "storefleet.allowedDomains" -}}
{{- $default := .Values.storeDomain | default (dig "store" "domain" "" .Values.storeValues) -}}
{{- $list := .Values.allowedDomains | default list -}}
{{- if and $list $default -}}{{- $list = prepend $list $default -}}{{- end -}}
{{- if $list -}}{{ $list | uniq | join "," }}{{- else -}}{{ $default }}{{- end -}}
{{- end }}
