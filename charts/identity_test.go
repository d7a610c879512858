package charts_test

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/storefleet/storefleet/internal/manifests"
)

// TestPlatformIdentityFailsSafe: the chart never renders an API that
// believes identities nobody checked. Without a choice it refuses; header
// identity needs the proxy's own addresses and, with an Ingress, routes every
// request through that proxy (the API's policy admits only it); the prod
// values ship OIDC.
func TestPlatformIdentityFailsSafe(t *testing.T) {
	ch := loadPlatformChart(t)
	header := func(extra map[string]any) map[string]any {
		api := map[string]any{"auth": "header"}
		for k, v := range extra {
			api[k] = v
		}
		return map[string]any{"api": api}
	}
	proxy := map[string]any{"service": "oauth2-proxy", "port": 4180, "namespace": "storefleet-system",
		"podSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "oauth2-proxy"}}}
	refused := []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no choice (the chart's defaults)", nil, "api.auth is required"},
		{"header identity without the proxy's addresses", header(nil), "api.auth=header needs api.trustedProxies"},
		{"header identity with the Ingress straight to the API", header(map[string]any{"trustedProxies": "10.0.0.0/8"}), "needs api.authProxy"},
		{"an incomplete proxy", header(map[string]any{"trustedProxies": "10.42.0.0/16", "authProxy": map[string]any{"service": "oauth2-proxy"}}), "needs api.authProxy"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, ch, "storefleet", "storefleet-system", c.vals)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("rendered (error %v), want a refusal naming %q", err, c.want)
			}
		})
	}

	t.Run("header identity behind its proxy", func(t *testing.T) {
		files, err := render(t, ch, "storefleet", "storefleet-system", header(map[string]any{"trustedProxies": "10.42.7.0/24", "authProxy": proxy}))
		if err != nil {
			t.Fatal(err)
		}
		api := files["storefleet/templates/api.yaml"]
		if !strings.Contains(api, "--trusted-proxies=10.42.7.0/24") {
			t.Errorf("the API does not trust exactly the proxy's range:\n%s", api)
		}
		ing := decodeOne[networkingv1.Ingress](t, api, "Ingress")
		if b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service; b.Name != "oauth2-proxy" || b.Port.Number != 4180 {
			t.Errorf("the Ingress sends requests to %s:%d, want the authenticating proxy oauth2-proxy:4180", b.Name, b.Port.Number)
		}
		pol := decodeOne[networkingv1.NetworkPolicy](t, files["storefleet/templates/networkpolicies.yaml"], "NetworkPolicy")
		from := pol.Spec.Ingress[0].From
		if len(from) != 1 || from[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "storefleet-system" ||
			from[0].PodSelector == nil || from[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "oauth2-proxy" {
			t.Errorf("the API's policy admits %+v, want only the proxy's pods", from)
		}
	})

	t.Run("prod ships OIDC", func(t *testing.T) {
		files, _ := renderEnv(t, "prod", "storefleet-system")
		api := files["storefleet/templates/api.yaml"]
		for _, want := range []string{"--auth=jwt", "--oidc-issuer=https://id.example.com", "--oidc-audience=storefleet"} {
			if !strings.Contains(api, want) {
				t.Errorf("the prod API lacks %s", want)
			}
		}
		if strings.Contains(api, "--auth=header") || strings.Contains(api, "10.0.0.0/8") {
			t.Errorf("the prod API believes header identities:\n%s", api)
		}
	})
}

// decodeOne decodes the first object of kind in a rendered template.
func decodeOne[T any](t *testing.T, doc, kind string) *T {
	t.Helper()
	objs, err := manifests.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == kind {
			out := new(T)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	t.Fatalf("no %s in:\n%s", kind, doc)
	return nil
}

// TestAPIMetricsAreNotPublic: the API serves its metrics on their own port,
// which the Service names apart and the Ingress never routes to.
func TestAPIMetricsAreNotPublic(t *testing.T) {
	files, err := render(t, loadPlatformChart(t), "storefleet", "storefleet-system", minimalValues())
	if err != nil {
		t.Fatal(err)
	}
	api := files["storefleet/templates/api.yaml"]
	if !strings.Contains(api, "--metrics-addr=:9090") {
		t.Errorf("the API is not told to serve metrics apart:\n%s", api)
	}
	ing := decodeOne[networkingv1.Ingress](t, api, "Ingress")
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		if p.Backend.Service.Port.Name != "http" {
			t.Errorf("the Ingress routes %s to port %+v, want only http", p.Path, p.Backend.Service.Port)
		}
	}
}
