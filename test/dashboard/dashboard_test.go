// Package dashboard tests the web dashboard end to end: `storefleet dev` on
// the local cluster, the dashboard it serves, driven in headless Chromium
// (Debian's chromium) by web/e2e/dashboard.e2e.mjs through playwright-core.
// Screenshots of the list and the store page are kept in build/screenshots.
package dashboard_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/test/testenv"
)

const moduleRoot = "../.."

func TestDashboardInChromium(t *testing.T) {
	chromium, node := testenv.Browser(t, moduleRoot)
	binary, err := testenv.BuildStorefleet(moduleRoot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The API writing Store objects: the whole tour. With the Git intent the
	// same form commits to dev's stores repo: committed → synced → Ready.
	t.Run("kubernetes", func(t *testing.T) {
		testDashboard(t, binary, chromium, node, "kubernetes", []string{"list-empty.png", "list.png", "store-ready.png", "store-phone.png"})
	})
	t.Run("git", func(t *testing.T) {
		testDashboard(t, binary, chromium, node, "git", []string{"store-git.png"}, "--intent", "git")
	})
}

func testDashboard(t *testing.T, binary, chromium, node, intent string, screenshots []string, args ...string) {
	workdir := t.TempDir()
	dev, err := testenv.StartDev(binary, workdir, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Kill()

	// The binary serves the dashboard it embeds, at the URL dev prints.
	if !strings.Contains(dev.Output(), "Dashboard:   "+dev.URL+"/") {
		t.Errorf("storefleet dev does not print the dashboard URL %s/:\n%s", dev.URL, dev.Output())
	}
	resp, err := http.Get(dev.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / answered %d %s: the binary does not serve the dashboard", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	shots, err := filepath.Abs(filepath.Join(moduleRoot, "build", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	e2e := exec.Command(node, "e2e/dashboard.e2e.mjs")
	e2e.Dir = filepath.Join(moduleRoot, "web")
	e2e.Env = append(os.Environ(), "STOREFLEET_URL="+dev.URL, "SCREENSHOTS="+shots, "CHROMIUM="+chromium, "INTENT="+intent)
	e2e.Stdout, e2e.Stderr = os.Stdout, os.Stderr
	if err := e2e.Run(); err != nil {
		t.Fatalf("dashboard end-to-end test failed (%v); screenshots in %s\n%s", err, shots, dev.Diagnosis())
	}
	for _, name := range screenshots {
		if st, err := os.Stat(filepath.Join(shots, name)); err != nil || st.Size() < 10_000 {
			t.Errorf("screenshot %s missing or empty: %v", name, err)
		}
	}

	pids := devcluster.WorkdirPIDs(workdir)
	if err := dev.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if devcluster.Alive(pid) {
			t.Errorf("process %d still running after storefleet dev stopped", pid)
		}
	}
	fmt.Printf("screenshots: %s\n", shots)
}
