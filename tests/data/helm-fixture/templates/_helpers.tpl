{{- define "fixture.greet" -}}hello {{ . }}{{- end -}}
{{- define "fixture.loop" -}}{{ include "fixture.loop" . }}{{- end -}}
