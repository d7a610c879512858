package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Browser finds what the Chromium end-to-end scripts (web/e2e) need, and
// fails with what to install when something is missing: a skipped browser
// test would pass CI without testing anything.
func Browser(t *testing.T, moduleRoot string) (chromium, node string) {
	t.Helper()
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium not found at %s: install Debian's chromium (apt-get install chromium) or set CHROMIUM", chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node not found: install Node.js 20.19 or later (apt-get install nodejs npm)")
	}
	web := filepath.Join(moduleRoot, "web")
	if _, err := os.Stat(filepath.Join(web, "node_modules", "playwright-core")); err != nil {
		t.Fatal("web/node_modules/playwright-core missing: run `make web` (npm ci and the dashboard build)")
	}
	if _, err := os.Stat(filepath.Join(web, "dist", "app", "index.html")); err != nil {
		t.Fatal("the dashboard is not built (web/dist/app/index.html): run `make web` before `go test`")
	}
	return chromium, node
}
