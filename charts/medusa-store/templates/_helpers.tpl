{{/* Labels on every object; storefleet.dev/store is how the operator watches its managed objects. */}}
{{- define "medusa-store.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "medusa-store.common" . }}
{{- end }}

{{/* Labels of every object but the selector ones, for objects that also carry a component selector
     (a key must not appear twice: Flux's post-renderer parses the manifests strictly). */}}
{{- define "medusa-store.common" -}}
app.kubernetes.io/part-of: storefleet
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
storefleet.dev/store: {{ required "store.name is required" .Values.store.name | quote }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "backend"). */}}
{{- define "medusa-store.selector" -}}
app.kubernetes.io/name: medusa-store
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "medusa-store.image" -}}
{{- printf "%s/%s:%s" .registry .image.repository .image.tag -}}
{{- end }}

{{/* Pod Security "restricted": non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp. */}}
{{- define "medusa-store.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: false
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "medusa-store.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "medusa-store.host" -}}
{{- printf "%s.%s" .Values.store.name .Values.store.domain -}}
{{- end }}

{{- define "medusa-store.url" -}}
{{- $scheme := ternary "https" "http" .Values.ingress.tls.enabled -}}
{{- $port := int (.Values.ingress.port | default 0) -}}
{{- if or (eq $port 0) (and (eq $scheme "http") (eq $port 80)) (and (eq $scheme "https") (eq $port 443)) -}}
{{- printf "%s://%s" $scheme (include "medusa-store.host" .) -}}
{{- else -}}
{{- printf "%s://%s:%d" $scheme (include "medusa-store.host" .) $port -}}
{{- end -}}
{{- end }}

{{/* Secret references shared by the server, the worker and the migration init container. */}}
{{- define "medusa-store.medusaEnv" -}}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "credentials.existingSecret is required" .Values.credentials.existingSecret }}
      key: postgres-password
- name: DATABASE_URL
  value: "postgres://medusa:$(POSTGRES_PASSWORD)@postgres:5432/medusa?sslmode=disable"
- name: JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.credentials.existingSecret }}
      key: jwt-secret
- name: COOKIE_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.credentials.existingSecret }}
      key: cookie-secret
{{- with (include "medusa-store.redisUrl" .) }}
- name: REDIS_URL
  value: {{ . | quote }}
{{- end }}
- name: MEDUSA_BACKEND_URL
  value: {{ include "medusa-store.url" . | quote }}
- name: STORE_CORS
  value: {{ include "medusa-store.url" . | quote }}
- name: ADMIN_CORS
  value: {{ include "medusa-store.url" . | quote }}
- name: AUTH_CORS
  value: {{ include "medusa-store.url" . | quote }}
- name: NODE_ENV
  value: production
{{- end }}

{{/* The Redis Medusa uses: an external redisUrl, else the store's own. */}}
{{- define "medusa-store.redisUrl" -}}
{{- if .Values.redisUrl }}{{ .Values.redisUrl }}{{ else if .Values.redis.enabled }}redis://redis:6379{{ end }}
{{- end }}

{{/* Where the store's pods run (placement.nodeSelector, placement.tolerations). */}}
{{- define "medusa-store.placement" -}}
{{- with .Values.placement.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.placement.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Backend and worker wait for the release's migrations and bootstrap
     (Job medusa-migrate-<revision>) instead of migrating themselves: one
     migration per release, never racing between replicas. */}}
{{- define "medusa-store.awaitRelease" -}}
- name: await-migrations
  image: {{ include "medusa-store.image" (dict "registry" .Values.images.registry "image" .Values.images.medusa) }}
  imagePullPolicy: {{ .Values.images.pullPolicy }}
  args: ["await-release"]
  env:
    {{- include "medusa-store.medusaEnv" . | nindent 4 }}
    - name: STOREFLEET_RELEASE_REVISION
      value: {{ .Release.Revision | quote }}
  resources:
    requests: {cpu: 10m, memory: 64Mi}
    limits: {cpu: 200m, memory: 128Mi}
  securityContext:
    {{- include "medusa-store.containerSecurity" . | nindent 4 }}
{{- end }}
