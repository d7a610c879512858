package charts_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/internal/manifests"
	"github.com/storefleet/storefleet/test/testenv"
)

// shared is the cluster of the dry-run and install tests, started by the
// first of them; the rendering and schema tests run without one.
var shared testenv.SharedCluster

func TestMain(m *testing.M) { testenv.RunShared(m, &shared) }

func loadPlatformChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.LoadDir("storefleet")
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// render renders the platform chart as `helm template` would, schema check
// included.
func render(t *testing.T, ch *chart.Chart, release, namespace string, vals map[string]any) (map[string]string, error) {
	t.Helper()
	opts := chartutil.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.35.4", Major: "1", Minor: "35"}
	values, err := chartutil.ToRenderValues(ch, vals, opts, caps)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, values)
}

// gitValues: the stores repo with the API committing through pull requests
// on a Gitea and the operator's reader behind a signed webhook.
func gitValues(t *testing.T) map[string]any {
	vals := envValues(t, "local")
	vals["git"] = map[string]any{
		"url": "https://git.example.com/platform/stores.git", "credentialsSecret": "stores-repo", "webhookSecret": "stores-webhook",
		"intent": true, "mode": "pull-request",
		"forge": map[string]any{"kind": "gitea", "url": "https://git.example.com", "repo": "platform/stores", "tokenSecret": "forge-token"},
	}
	return vals
}

func envValues(t *testing.T, env string) map[string]any {
	t.Helper()
	switch env {
	case "minimal":
		// The chart's defaults with the one choice it refuses to make: how
		// callers are identified.
		return minimalValues()
	case "git":
		return gitValues(t)
	}
	data, err := os.ReadFile("../clusters/" + env + "/platform/platform-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	return vals
}

// environments are the values the platform chart is checked with.
var environments = []string{"minimal", "local", "prod", "git"}

func minimalValues() map[string]any {
	return map[string]any{"api": map[string]any{"auth": "jwt", "oidc": map[string]any{"issuer": "https://id.example.com", "audience": "storefleet"}}}
}

// rendered is one object of the rendered chart, with the template it came from.
type rendered struct {
	file string
	obj  *unstructured.Unstructured
}

// renderEnv renders the platform chart with env's values (release name
// dryrun-<env>: ClusterRoles are cluster-wide, and the install test has a
// release "storefleet") and decodes its objects, checking that every
// document is strict YAML.
func renderEnv(t *testing.T, env, namespace string) (files map[string]string, objs []rendered) {
	t.Helper()
	ch := loadPlatformChart(t)
	// As Flux packages it from Git (reconcileStrategy Revision): a version
	// with build metadata, which must not leak into label values as is.
	ch.Metadata.Version += "+62edbd21cf8d"
	files, err := render(t, ch, "dryrun-"+env, namespace, envValues(t, env))
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, ".tpl") || strings.TrimSpace(files[name]) == "" {
			continue
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			var strict map[string]any
			if err := yaml.UnmarshalStrict([]byte(doc), &strict); err != nil {
				t.Errorf("%s: not strict YAML: %v", name, err)
			}
		}
		decoded, err := manifests.Decode([]byte(files[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, o := range decoded {
			objs = append(objs, rendered{file: name, obj: o})
		}
	}
	return files, objs
}

// TestPlatformChartRenders: with default, local and prod values (and the
// Git intent) the chart renders the objects each environment runs, with the
// flags that wire the stores repo.
func TestPlatformChartRenders(t *testing.T) {
	for _, env := range environments {
		t.Run(env, func(t *testing.T) {
			files, objs := renderEnv(t, env, "storefleet-system")
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.obj.GetKind()]++
			}
			want := map[string]int{"Deployment": 2, "Service": 2, "ServiceAccount": 3, "ClusterRole": 3, "ClusterRoleBinding": 3, "Role": 2, "RoleBinding": 2, "PodDisruptionBudget": 1, "Ingress": 1, "NetworkPolicy": 2}
			if env != "minimal" {
				want["Deployment"], want["Service"], want["NetworkPolicy"] = 3, 3, 3 // in-chart Redis
			}
			if env != "minimal" {
				want["ConfigMap"] = 1 // the environment's store values
			}
			if env == "prod" {
				want["HorizontalPodAutoscaler"] = 1
			}
			if env == "git" {
				operator, api := files["storefleet/templates/operator.yaml"], files["storefleet/templates/api.yaml"]
				for _, arg := range []string{"--git-url=https://git.example.com/platform/stores.git", "--git-sync=true", "--git-webhook-secret-file=/etc/storefleet/webhook/secret",
					"--forge-kind=gitea", "--dashboard-url=http://storefleet.localtest.me/", "--values=/etc/storefleet/store-values/values.yaml", "secretName: stores-repo"} {
					if !strings.Contains(operator, arg) {
						t.Errorf("the operator lacks %s", arg)
					}
				}
				for _, arg := range []string{"--intent=git", "--git-mode=pull-request", "--git-credentials-file=/etc/storefleet/git/credentials", "--forge-token-file=/etc/storefleet/forge/token", "secretName: forge-token"} {
					if !strings.Contains(api, arg) {
						t.Errorf("the API lacks %s", arg)
					}
				}
			}
			for kind, n := range want {
				if kinds[kind] != n {
					t.Errorf("%d %s objects, want %d (all: %v)", kinds[kind], kind, n, kinds)
				}
			}
		})
	}
}

// TestPlatformChartPassesDryRun: in every environment every object is
// accepted by the real API server (schema, admission, Pod Security
// "restricted" on the namespace).
func TestPlatformChartPassesDryRun(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	for _, env := range environments {
		t.Run(env, func(t *testing.T) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "platform-", Labels: map[string]string{
				"pod-security.kubernetes.io/enforce": "restricted",
			}}}
			if err := cluster.Client.Create(ctx, ns); err != nil {
				t.Fatal(err)
			}
			_, objs := renderEnv(t, env, ns.Name)
			for _, o := range objs {
				if err := cluster.Client.Create(ctx, o.obj, client.DryRunAll); err != nil {
					t.Errorf("%s %s (%s) rejected by the API server: %v", o.obj.GetKind(), o.obj.GetName(), o.file, err)
				}
			}
		})
	}
}

// TestPlatformChartSchemaRejectsBadValues: mistakes fail at install time
// with a message naming the value.
func TestPlatformChartSchemaRejectsBadValues(t *testing.T) {
	ch := loadPlatformChart(t)
	cases := []struct {
		name string
		vals map[string]any
		want string
	}{
		{"unknown delivery", map[string]any{"operator": map[string]any{"delivery": "argo"}}, "/operator/delivery': value must be one of 'auto', 'flux', 'helm'"},
		{"unknown auth", map[string]any{"api": map[string]any{"auth": "basic"}}, "/api/auth"},
		{"zero quota", map[string]any{"api": map[string]any{"maxStoresPerUser": 0}}, "/api/maxStoresPerUser': minimum"},
		{"misspelt key", map[string]any{"operater": map[string]any{"replicas": 2}}, "operater"},
		{"bad environment", map[string]any{"environment": "staging"}, "/environment"},
		{"redis url scheme", map[string]any{"redis": map[string]any{"url": "http://redis:6379"}}, "/redis/url"},
		{"jwt without issuer", map[string]any{"api": map[string]any{"auth": "jwt"}}, "api.oidc.issuer is required"},
		{"credentials in the Git URL", map[string]any{"git": map[string]any{"url": "https://bot:s3cret@git.example.com/stores.git"}}, "/git/url"},
		{"Git intent without a repo", map[string]any{"git": map[string]any{"intent": true}}, "/git/url"},
		{"pull requests without a forge", map[string]any{"git": map[string]any{"url": "https://git.example.com/stores.git", "intent": true, "mode": "pull-request"}}, "/git/forge/kind"},
		{"unknown Git mode", map[string]any{"git": map[string]any{"mode": "merge"}}, "/git/mode"},
		{"unknown forge", map[string]any{"git": map[string]any{"forge": map[string]any{"kind": "gitlab"}}}, "/git/forge/kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, ch, "storefleet", "storefleet-system", c.vals)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}

// TestPlatformRBACIsTheGeneratedOne: the chart grants the operator and the
// API exactly their generated ClusterRoles, with Leases only in the release
// namespace.
func TestPlatformRBACIsTheGeneratedOne(t *testing.T) {
	ch := loadPlatformChart(t)
	files, err := render(t, ch, "storefleet", "storefleet-system", minimalValues())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Decode([]byte(files["storefleet/templates/rbac.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	for component, generated := range map[string]string{"operator": "../reconciler/rbac/role.yaml", "api": "../openapi/rbac/role.yaml"} {
		data, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		var want rbacv1.ClusterRole
		if err := yaml.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		var got rbacv1.ClusterRole
		for _, o := range objs {
			if o.GetKind() == "ClusterRole" && o.GetName() == "storefleet-"+component {
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &got); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wantRules []rbacv1.PolicyRule
		for _, r := range want.Rules {
			if len(r.APIGroups) == 1 && r.APIGroups[0] == "coordination.k8s.io" {
				continue
			}
			wantRules = append(wantRules, r)
		}
		if fmt.Sprint(got.Rules) != fmt.Sprint(wantRules) {
			t.Errorf("%s ClusterRole rules\n%v\nwant the generated ones\n%v", component, got.Rules, wantRules)
		}
		for _, r := range got.Rules {
			for _, g := range r.APIGroups {
				if g == "coordination.k8s.io" {
					t.Errorf("%s ClusterRole grants Leases cluster-wide", component)
				}
			}
			if component == "api" && slices.Contains(r.Resources, "configmaps") {
				t.Errorf("the API's ClusterRole reads ConfigMaps cluster-wide: %v", r)
			}
		}
	}
	// The API reads the Git reader's status ConfigMap, and only it, in its namespace.
	for _, o := range objs {
		if o.GetKind() != "Role" || o.GetName() != "storefleet-api-leases" {
			continue
		}
		var role rbacv1.Role
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
			t.Fatal(err)
		}
		if r := role.Rules[len(role.Rules)-1]; !slices.Equal(r.Resources, []string{"configmaps"}) || !slices.Equal(r.ResourceNames, []string{gitsync.StatusConfigMap}) || !slices.Equal(r.Verbs, []string{"get"}) {
			t.Errorf("the API's Role rules %v, want get on ConfigMap storefleet-gitsync", role.Rules)
		}
		return
	}
	t.Error("no Role storefleet-api-leases")
}

// TestPlatformChartPassesTheAllowedDomains: the operator and the API get the
// same allow-list of store domains, the default domain always on it.
func TestPlatformChartPassesTheAllowedDomains(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string
		extra []any
		want  string
	}{
		{name: "prod default", env: "prod", want: "--allowed-domains=stores.example.com"},
		{name: "prod with more", env: "prod", extra: []any{"shops.example.com"}, want: "--allowed-domains=stores.example.com,shops.example.com"},
		{name: "local", env: "local", want: "--allowed-domains=localtest.me"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := envValues(t, tc.env)
			if tc.extra != nil {
				vals["allowedDomains"] = tc.extra
			}
			files, err := render(t, loadPlatformChart(t), "domains", "storefleet-system", vals)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"storefleet/templates/operator.yaml", "storefleet/templates/api.yaml"} {
				if !strings.Contains(files[f], tc.want+"\n") {
					t.Errorf("%s lacks %s", f, tc.want)
				}
			}
			if !strings.Contains(files["storefleet/templates/api.yaml"], "--environment="+tc.env) {
				t.Errorf("the API lacks --environment=%s", tc.env)
			}
		})
	}
	if _, err := render(t, loadPlatformChart(t), "domains", "storefleet-system", map[string]any{"allowedDomains": []any{"Not A Domain"}}); err == nil {
		t.Error("the schema accepted an allowed domain that is not a DNS name")
	}
}
