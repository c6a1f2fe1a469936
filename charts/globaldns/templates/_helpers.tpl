{{/*
The image reference, as Istio's charts build theirs: an image with a `/`
is taken whole; otherwise hub/image:tag, the component's hub and tag
before the global ones, the tag else the chart's appVersion, and no hub at
all when both hubs are empty.
*/}}
{{- define "globaldns.image" -}}
{{- if contains "/" .Values.image -}}
{{ .Values.image }}
{{- else -}}
{{- $hub := .Values.hub | default .Values.global.hub -}}
{{- $tag := .Values.tag | default .Values.global.tag | default .Chart.AppVersion -}}
{{- if $hub }}{{ $hub }}/{{ end }}{{ .Values.image }}:{{ $tag }}
{{- end -}}
{{- end }}

{{/*
The registry source, checked: `kubernetes` or `file`.
*/}}
{{- define "globaldns.kubernetesRegistry" -}}
{{- if eq .Values.registry.source "kubernetes" -}}
true
{{- else if eq .Values.registry.source "file" -}}
{{- if not .Values.registry.file -}}
{{- fail "registry.source is file: registry.file must hold the registry" -}}
{{- end -}}
{{- else -}}
{{- fail (printf "registry.source must be kubernetes or file, not %q" .Values.registry.source) -}}
{{- end -}}
{{- end }}

{{/*
`globaldns serve`'s arguments.
*/}}
{{- define "globaldns.args" -}}
- serve
{{- if include "globaldns.kubernetesRegistry" . }}
- --registry=kubernetes
{{- else }}
- --registry=/etc/globaldns/registry.yaml
{{- end }}
- --listen=0.0.0.0:5353
- --state-dir=/var/lib/globaldns
- --sync-service-entries
- --admin=0.0.0.0:9153
- --drain-delay=5s
{{- if ne .Values.global.istioNamespace "istio-system" }}
- --service-entry-namespace={{ .Values.global.istioNamespace }}
{{- end }}
{{- if not .Values.mcs.serviceImports }}
- --service-imports=false
{{- end }}
{{- if .Values.dropIn.enabled }}
- --serve-service-entries
{{- end }}
{{- range .Values.zones }}
- --zone={{ . }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
