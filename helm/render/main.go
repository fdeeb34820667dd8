// helm-render: render a Helm chart offline the way `helm template` does,
// built from Debian's Go packages (text/template, Masterminds/sprig,
// sigs.k8s.io/yaml, xeipuuv/gojsonschema) because no helm binary can be
// installed here.
//
// What it reproduces of helm's engine (helm.sh/helm/v3 pkg/engine and
// pkg/chartutil, read for behaviour, written anew):
//   - one template set: every file under templates/ is a named template
//     "<chart>/templates/<path>", parsed deeper paths first; files whose name
//     starts with "_" are only for include; missingkey=zero and "<no value>"
//     removed from the output;
//   - sprig's text functions without env/expandenv, plus toYaml (sigs yaml,
//     trailing newline trimmed, "" on error), fromYaml, fromYamlArray, toJson,
//     fromJson, fromJsonArray, include (with a recursion limit), tpl (renders
//     a string with the chart's templates in scope), required (fails on nil
//     or ""), fail, lookup (empty: no cluster);
//   - .Values = values.yaml coalesced with -f files and --set/--set-string
//     (maps merge deeply, null deletes a key), then validated against
//     values.schema.json (JSON Schema, as helm does with gojsonschema);
//   - .Release, .Chart (Chart.yaml), .Capabilities (KubeVersion,
//     APIVersions.Has), .Files.Get, .Template.{Name,BasePath};
//   - output like `helm template`: documents split at "---", empty ones
//     dropped, ordered by helm's install order of kinds, each preceded by
//     "# Source: <template>"; every document must parse as YAML and carry
//     apiVersion, kind and metadata.name.
//
// Not reproduced: subcharts and dependencies, hooks, lookup against a
// cluster, .Files.Glob/AsConfig, --set's index syntax (a[0]=x), several
// assignments in one --set (a=1,b=2) and backslash escapes in --set values.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"
)

const maxIncludeDepth = 1000

type values = map[string]interface{}

// ---- chart loading

type chartMeta struct {
	APIVersion  string
	Name        string
	Version     string
	AppVersion  string
	Description string
	Type        string
	KubeVersion string
	Home        string
	Keywords    []string
}

type chartFiles map[string][]byte

func (f chartFiles) Get(name string) string      { return string(f[name]) }
func (f chartFiles) GetBytes(name string) []byte { return f[name] }

type versionSet []string

func (v versionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type kubeVersion struct {
	Version, Major, Minor, GitVersion string
}

func (k kubeVersion) String() string { return k.Version }

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions versionSet
	HelmVersion map[string]string
}

type chart struct {
	dir       string
	meta      chartMeta
	defaults  values
	schema    []byte
	templates map[string]string // "<chart>/templates/<path>" -> text
	files     chartFiles
}

func loadChart(dir string) (*chart, error) {
	c := &chart{dir: dir, templates: map[string]string{}, files: chartFiles{}}
	raw, err := ioutil.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	var m map[string]interface{}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %v", err)
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	c.meta = chartMeta{APIVersion: str("apiVersion"), Name: str("name"), Version: str("version"),
		AppVersion: str("appVersion"), Description: str("description"), Type: str("type"),
		KubeVersion: str("kubeVersion"), Home: str("home")}
	if c.meta.Name == "" || c.meta.Version == "" {
		return nil, errors.New("Chart.yaml: name and version are required")
	}
	c.defaults = values{}
	if raw, err := ioutil.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if err := yaml.Unmarshal(raw, &c.defaults); err != nil {
			return nil, fmt.Errorf("values.yaml: %v", err)
		}
		if c.defaults == nil {
			c.defaults = values{}
		}
	}
	if raw, err := ioutil.ReadFile(filepath.Join(dir, "values.schema.json")); err == nil {
		c.schema = raw
	}
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		data, err := ioutil.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			c.templates[path.Join(c.meta.Name, rel)] = string(data)
		} else {
			c.files[rel] = data
		}
		return nil
	})
	return c, err
}

// ---- values: coalescing and --set

// coalesce merges src over dst: maps deeply, anything else replaces; a nil
// (YAML null) in src deletes the key, as helm's coalescing does.
func coalesce(dst, src values) values {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// parseSetValue types a --set value as helm's strvals does: {a,b} is a list
// (with --set-string too, of strings); then, without --set-string, true,
// false and null in any case, integers not written with a leading zero;
// anything else a string.
func parseSetValue(s string, asString bool) interface{} {
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		inner := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
		out := []interface{}{}
		if inner != "" {
			for _, part := range strings.Split(inner, ",") {
				out = append(out, parseSetValue(part, asString))
			}
		}
		return out
	}
	if asString {
		return s
	}
	switch strings.ToLower(s) {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	case "0":
		return int64(0)
	}
	if s != "" && s[0] != '0' {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
	}
	return s
}

func applySet(v values, expr string, asString bool) error {
	eq := strings.Index(expr, "=")
	if eq <= 0 {
		return fmt.Errorf("--set %q: expected key=value", expr)
	}
	keys := strings.Split(expr[:eq], ".")
	cur := v
	for _, k := range keys[:len(keys)-1] {
		if k == "" {
			return fmt.Errorf("--set %q: empty key", expr)
		}
		next, ok := cur[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			cur[k] = next
		}
		cur = next
	}
	last := keys[len(keys)-1]
	val := parseSetValue(expr[eq+1:], asString)
	if val == nil {
		delete(cur, last)
	} else {
		cur[last] = val
	}
	return nil
}

// validate checks the values against values.schema.json, as helm install does.
func validate(c *chart, v values) error {
	if c.schema == nil {
		return nil
	}
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	res, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(c.schema),
		gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return fmt.Errorf("values.schema.json: %v", err)
	}
	if res.Valid() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n", c.meta.Name)
	for _, e := range res.Errors() {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	return errors.New(strings.TrimSuffix(b.String(), "\n"))
}

// ---- the engine

type engine struct {
	c     *chart
	top   values // Values, Release, Chart, Capabilities, Files
	depth map[string]int
}

var errMarker = regexp.MustCompile(`RENDER_ERR\[((?s).*)\]RENDER_ERR`)

func wrapMsg(s string) error { return fmt.Errorf("RENDER_ERR[%s]RENDER_ERR", s) }

func toYAML(v interface{}) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func (e *engine) funcs(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["toJson"] = toJSON
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromYamlArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := yaml.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromJsonArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		if e.depth[name] > maxIncludeDepth {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		e.depth[name]++
		defer func() { e.depth[name]-- }()
		var b strings.Builder
		err := t.ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	f["tpl"] = func(text string, vals values) (string, error) {
		tinfo, _ := vals["Template"].(values)
		name, _ := tinfo["Name"].(string)
		if name == "" {
			return "", errors.New("tpl: .Template.Name missing from the values given to tpl")
		}
		out, err := e.renderOne(name, text, vals)
		if err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %v", text, err)
		}
		return out, nil
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, wrapMsg(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, wrapMsg(msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", wrapMsg(msg) }
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

// templateOrder is helm's parse order: deeper paths first, then by name, reversed.
func templateOrder(names []string) []string {
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		ca, cb := strings.Count(a, "/"), strings.Count(b, "/")
		if ca != cb {
			return ca > cb
		}
		return a > b
	})
	return names
}

// newSet parses every chart template (and extra, if given) into one set.
func (e *engine) newSet(extraName, extraText string) (*template.Template, error) {
	t := template.New("gotpl").Option("missingkey=zero")
	t.Funcs(e.funcs(t))
	names := []string{}
	for n := range e.c.templates {
		if n != extraName {
			names = append(names, n)
		}
	}
	for _, n := range templateOrder(names) {
		if _, err := t.New(n).Parse(e.c.templates[n]); err != nil {
			return nil, parseError(n, err)
		}
	}
	if extraName != "" {
		if _, err := t.New(extraName).Parse(extraText); err != nil {
			return nil, parseError(extraName, err)
		}
	}
	return t, nil
}

func (e *engine) scope(name string) values {
	v := values{}
	for k, x := range e.top {
		v[k] = x
	}
	v["Template"] = values{"Name": name, "BasePath": path.Join(e.c.meta.Name, "templates")}
	return v
}

func (e *engine) renderOne(name, text string, vals values) (string, error) {
	t, err := e.newSet(name, text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, vals); err != nil {
		return "", execError(name, err)
	}
	return strings.ReplaceAll(b.String(), "<no value>", ""), nil
}

func parseError(name string, err error) error {
	return fmt.Errorf("parse error in (%s): %v", name, err)
}

// execError turns "template: NAME:LINE:COL: executing ...: RENDER_ERR[msg]" into
// helm's "execution error at (NAME:LINE:COL): msg".
func execError(name string, err error) error {
	msg := err.Error()
	parts := strings.SplitN(msg, ": ", 3)
	if m := errMarker.FindStringSubmatch(msg); m != nil && len(parts) == 3 {
		return fmt.Errorf("execution error at (%s): %s", parts[1], m[1])
	}
	return fmt.Errorf("execution error in (%s): %s", name, msg)
}

// ---- output

// helm's install order (pkg/releaseutil/kind_sorter.go), the kinds a chart like ours uses
var installOrder = []string{"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
	"ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
	"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService"}

func kindRank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder) // unknown kinds (ServiceMonitor) go last, as in helm
}

type manifest struct {
	source, kind, name, body string
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

func splitManifests(source, text string) ([]manifest, error) {
	var out []manifest
	for _, doc := range docSep.Split(text, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		// documents holding only comments are dropped too
		content := false
		for _, l := range strings.Split(doc, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				content = true
				break
			}
		}
		if !content {
			continue
		}
		var obj map[string]interface{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("YAML parse error on %s: %v", source, err)
		}
		kind, _ := obj["kind"].(string)
		apiVersion, _ := obj["apiVersion"].(string)
		md, _ := obj["metadata"].(map[string]interface{})
		name, _ := md["name"].(string)
		if kind == "" || apiVersion == "" || name == "" {
			return nil, fmt.Errorf("%s: a document without apiVersion, kind or metadata.name", source)
		}
		out = append(out, manifest{source, kind, name, strings.Trim(doc, "\n")})
	}
	return out, nil
}

// ---- main

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func run() error {
	var valueFiles, sets, setStrings, apiVersions multi
	release := flag.String("release", "podsnoop", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kube := flag.String("kube-version", "1.30.0", "Kubernetes version for .Capabilities")
	notes := flag.Bool("show-notes", false, "also print templates/NOTES.txt")
	valuesOut := flag.Bool("show-values", false, "print the coalesced values as JSON and exit")
	flag.Var(&valueFiles, "f", "values file (repeatable)")
	flag.Var(&sets, "set", "key=value (repeatable)")
	flag.Var(&setStrings, "set-string", "key=value, value kept a string (repeatable)")
	flag.Var(&apiVersions, "api-versions", "extra API version for .Capabilities.APIVersions")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: helm-render [flags] CHART_DIR\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	c, err := loadChart(flag.Arg(0))
	if err != nil {
		return err
	}
	vals := coalesce(values{}, c.defaults)
	for _, f := range valueFiles {
		raw, err := ioutil.ReadFile(f)
		if err != nil {
			return err
		}
		var v values
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s: %v", f, err)
		}
		vals = coalesce(vals, v)
	}
	for _, s := range sets {
		if err := applySet(vals, s, false); err != nil {
			return err
		}
	}
	for _, s := range setStrings {
		if err := applySet(vals, s, true); err != nil {
			return err
		}
	}
	if *valuesOut {
		fmt.Println(toJSON(vals))
		return nil
	}
	if err := validate(c, vals); err != nil {
		return err
	}
	kv := strings.TrimPrefix(*kube, "v")
	parts := strings.SplitN(kv, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("--kube-version %q: expected MAJOR.MINOR[.PATCH]", *kube)
	}
	apis := versionSet{"v1", "apps/v1", "rbac.authorization.k8s.io/v1", "policy/v1",
		"scheduling.k8s.io/v1", "batch/v1"}
	apis = append(apis, apiVersions...)
	e := &engine{c: c, depth: map[string]int{}}
	e.top = values{
		"Values": vals,
		"Release": values{"Name": *release, "Namespace": *namespace, "IsInstall": true,
			"IsUpgrade": false, "Revision": 1, "Service": "Helm"},
		"Chart": c.meta,
		"Capabilities": capabilities{kubeVersion{"v" + kv, parts[0], parts[1], "v" + kv}, apis,
			map[string]string{"Version": "v3-compatible (podsnoop helm-render)"}},
		"Files": c.files,
	}
	t, err := e.newSet("", "")
	if err != nil {
		return err
	}
	names := []string{}
	for n := range c.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	var all []manifest
	var notesText string
	for _, n := range names {
		base := path.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		var b strings.Builder
		if err := t.ExecuteTemplate(&b, n, e.scope(n)); err != nil {
			return execError(n, err)
		}
		out := strings.ReplaceAll(b.String(), "<no value>", "")
		if base == "NOTES.txt" {
			notesText = out
			continue
		}
		if !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml") &&
			!strings.HasSuffix(base, ".tpl") {
			continue
		}
		ms, err := splitManifests(n, out)
		if err != nil {
			return err
		}
		all = append(all, ms...)
	}
	sort.SliceStable(all, func(i, j int) bool {
		ri, rj := kindRank(all[i].kind), kindRank(all[j].kind)
		if ri != rj {
			return ri < rj
		}
		return all[i].name < all[j].name
	})
	for _, m := range all {
		fmt.Printf("---\n# Source: %s\n%s\n", m.source, m.body)
	}
	if *notes && notesText != "" {
		fmt.Printf("\nNOTES:\n%s\n", notesText)
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}
