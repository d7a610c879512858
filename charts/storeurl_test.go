package charts_test

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
)

// TestStoreURLCarriesTheIngressPort: a store behind an ingress on a port
// other than the scheme's default links, allows CORS and serves uploads at
// that port (the operator's status URLs say the same, reconciler's test).
func TestStoreURLCarriesTheIngressPort(t *testing.T) {
	ch, err := loader.LoadDir("medusa-store")
	if err != nil {
		t.Fatal(err)
	}
	for port, want := range map[int]string{0: "http://shop.localhost", 80: "http://shop.localhost", 8081: "http://shop.localhost:8081"} {
		files, err := render(t, ch, "shop", "store-shop", map[string]any{
			"store":       map[string]any{"name": "shop", "domain": "localhost", "owner": "alice"},
			"credentials": map[string]any{"existingSecret": "store-credentials"},
			"ingress":     map[string]any{"port": port},
		})
		if err != nil {
			t.Fatal(err)
		}
		backend := files["medusa-store/templates/backend.yaml"]
		for _, env := range []string{"MEDUSA_BACKEND_URL", "STORE_CORS", "ADMIN_CORS", "AUTH_CORS"} {
			if !strings.Contains(backend, "- name: "+env+"\n              value: \""+want+"\"") {
				t.Errorf("port %d: %s is not %s in:\n%s", port, env, want, backend)
				break
			}
		}
	}
}
