{{/* Names, labels and the pieces several templates share. */}}

{{- define "bgtask.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bgtask.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A name derived from the fullname: include "bgtask.child" (list . "suffix") */}}
{{- define "bgtask.child" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "bgtask.fullname" $root | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" -}}
{{- end -}}

{{/*
A cluster-scoped name: the release namespace, then a name derived from the fullname (include
"bgtask.clusterName" (list . "suffix"), "" for the fullname itself). Not cut to 63 characters:
RBAC names may be longer, and a cut would drop the suffix that keeps the release's names apart.
*/}}
{{- define "bgtask.clusterName" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" $root.Release.Namespace (ternary (include "bgtask.child" (list $root $suffix)) (include "bgtask.fullname" $root) (ne $suffix "")) -}}
{{- end -}}

{{- define "bgtask.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bgtask.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bgtask.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "bgtask.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bgtask-operator
{{- end -}}

{{/* Labels of one component: include "bgtask.componentLabels" (list . "operator") */}}
{{- define "bgtask.componentLabels" -}}
{{ include "bgtask.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "bgtask.componentSelector" -}}
{{ include "bgtask.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- /* repository:tag, or repository:tag@digest when a digest pins it (the runtime pulls by digest). */ -}}
{{- define "bgtask.image" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- with .digest }}@{{ . }}{{ end -}}
{{- end -}}

{{- define "bgtask.operatorServiceAccount" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "bgtask.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "bgtask.runnerServiceAccount" -}}
{{- default (include "bgtask.child" (list . "runner")) .Values.runner.serviceAccount.name -}}
{{- end -}}

{{- define "bgtask.familiesConfigMap" -}}
{{- include "bgtask.child" (list . "families") -}}
{{- end -}}

{{/* The namespace runs of the release's own tasks happen in: the watched one, else the release's. */}}
{{- define "bgtask.runNamespace" -}}
{{- default .Release.Namespace .Values.operator.watchNamespace -}}
{{- end -}}

{{- define "bgtask.bundledSecret" -}}
{{- include "bgtask.child" (list . "bundled") -}}
{{- end -}}

{{- define "bgtask.postgresqlHost" -}}
{{- include "bgtask.child" (list . "postgresql") -}}
{{- end -}}

{{- define "bgtask.redisHost" -}}
{{- include "bgtask.child" (list . "redis") -}}
{{- end -}}

{{/*
The Secret and env mapping of each credential in force, as a dict name → {secret, env}: an
existingSecret wins; the bundled Postgres/Redis fill in database/redis when enabled.
*/}}
{{- define "bgtask.credentials" -}}
{{- $out := dict -}}
{{- range $name, $c := .Values.credentials -}}
{{- if $c.existingSecret -}}
{{- $_ := set $out $name (dict "secret" $c.existingSecret "env" $c.env) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.postgresql.enabled (not (hasKey $out "database")) -}}
{{- $_ := set $out "database" (dict "secret" (include "bgtask.bundledSecret" .) "env" (dict "DATABASE_URL" "database-url")) -}}
{{- end -}}
{{- if and .Values.redis.enabled (not (hasKey $out "redis")) -}}
{{- $_ := set $out "redis" (dict "secret" (include "bgtask.bundledSecret" .) "env" (dict "REDIS_URL" "redis-url")) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
The runner's environment: runner.env, then the credentials; a YAML list of EnvVar (may be empty).
The operator gives it to every run (bgtask.operatorRunnerEnv); the helm test Pod gets it as is.
*/}}
{{- define "bgtask.runnerEnv" -}}
{{- range $var := keys .Values.runner.env | sortAlpha }}
- name: {{ $var }}
  value: {{ index $.Values.runner.env $var | quote }}
{{- end }}
{{- $creds := include "bgtask.credentials" . | fromJson -}}
{{- range $name := keys $creds | sortAlpha }}
{{- $c := index $creds $name }}
{{- range $var := keys $c.env | sortAlpha }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef: {name: {{ $c.secret | quote }}, key: {{ index $c.env $var | quote }}}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The runs' environment as the operator takes it (RUNNER_ENV): bgtask.runnerEnv as a JSON list, its
Secret references optional — runs also happen in namespaces without the release's Secrets
(runner.serviceAccount.extraNamespaces), where a task that needs a missing variable fails saying
so instead of every pod waiting for a Secret. Empty when there is nothing to pass.
*/}}
{{- define "bgtask.operatorRunnerEnv" -}}
{{- $env := include "bgtask.runnerEnv" . | fromYamlArray -}}
{{- range $env -}}
{{- if .valueFrom -}}{{- $_ := set .valueFrom.secretKeyRef "optional" true -}}{{- end -}}
{{- end -}}
{{- if $env -}}{{- toJson $env -}}{{- end -}}
{{- end -}}

{{/* true when migrations run against the bundled Postgres: they must wait for it (post-* hooks). */}}
{{- define "bgtask.migrateAfterInstall" -}}
{{- $creds := include "bgtask.credentials" . | fromJson -}}
{{- if and (hasKey $creds "database") (eq (index $creds "database").secret (include "bgtask.bundledSecret" .)) -}}true{{- end -}}
{{- end -}}

{{/* The restricted security context of every container the chart runs with the runner image. */}}
{{- define "bgtask.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/*
Every namespace with the runner's ServiceAccount, as a JSON list: the release's (helm test), the
run namespace and runner.serviceAccount.extraNamespaces.
*/}}
{{- define "bgtask.runnerNamespaces" -}}
{{- concat (list .Release.Namespace (include "bgtask.runNamespace" .)) .Values.runner.serviceAccount.extraNamespaces | uniq | toJson -}}
{{- end -}}

{{- define "bgtask.leaseName" -}}
{{- default (include "bgtask.fullname" .) .Values.operator.leaderElection.leaseName -}}
{{- end -}}
