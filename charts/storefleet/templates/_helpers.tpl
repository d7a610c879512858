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

{{/*
checkIdentity refuses an API that would believe identities nobody checked:
no default auth mode, no wide trusted range, and in header mode the Ingress
reaches the API only through the authenticating proxy.
*/}}
{{- define "storefleet.checkIdentity" -}}
{{- $a := .Values.api -}}
{{- if not $a.auth -}}
{{- fail "api.auth is required: jwt (OIDC bearer tokens: api.oidc.issuer and api.oidc.audience) or header (behind an authenticating proxy: api.trustedProxies and api.authProxy). There is no default: an API that believed any X-User-Id would let anyone who reaches it be any user, admins included." -}}
{{- end -}}
{{- if eq $a.auth "header" -}}
{{- if not $a.trustedProxies -}}
{{- fail "api.auth=header needs api.trustedProxies: the CIDRs of the authenticating proxy's pods (there is no default; the pod network would include the ingress controller, which forwards clients' headers)" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not $a.insecureLocalIdentity) -}}
{{- if not (and $a.authProxy.service $a.authProxy.port $a.authProxy.namespace $a.authProxy.podSelector) -}}
{{- fail "api.auth=header with ingress.enabled needs api.authProxy (service, port, namespace, podSelector): the Ingress must reach the API only through the proxy that sets X-User-Id and X-User-Groups. Or use api.auth=jwt." -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* behindAuthProxy: header mode whose only way in is the authenticating proxy. */}}
{{- define "storefleet.behindAuthProxy" -}}
{{- if and (eq .Values.api.auth "header") (not .Values.api.insecureLocalIdentity) .Values.api.authProxy.service -}}true{{- end -}}
{{- end }}
