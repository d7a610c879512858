package store_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/storefleet/storefleet/test/testenv"
)

// TestDashboardDrivesARealStore: a shop owner's way in headless Chromium
// (web/e2e/realstore.e2e.mjs): dashboard → create → Ready → the storefront
// shows the priced product → the one-time admin link → Medusa's admin, logged
// in, lists the product. Screenshots land in build/screenshots.
func TestDashboardDrivesARealStore(t *testing.T) {
	// The package's TestMain runs from the repository's root.
	chromium, node := testenv.Browser(t, ".")
	shots, err := filepath.Abs(filepath.Join("build", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	e2e := exec.Command(node, "e2e/realstore.e2e.mjs")
	e2e.Dir = "web"
	e2e.Env = append(os.Environ(), "STOREFLEET_URL="+dev.URL, "SCREENSHOTS="+shots, "CHROMIUM="+chromium)
	e2e.Stdout, e2e.Stderr = os.Stdout, os.Stderr
	if err := e2e.Run(); err != nil {
		t.Fatalf("real store end-to-end test failed (%v); screenshots in %s\n%s", err, shots, dev.Diagnosis())
	}
	for _, name := range []string{"real-store-ready.png", "real-storefront.png", "real-admin.png"} {
		if st, err := os.Stat(filepath.Join(shots, name)); err != nil || st.Size() < 10_000 {
			t.Errorf("screenshot %s missing or empty: %v", name, err)
		}
	}
}
