package gitops_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/openapi"
)

// storesRepo makes a bare repository (file:// URL) whose main branch holds
// a README and what build adds, committed with the real git.
func storesRepo(t *testing.T, build func(work string)) string {
	t.Helper()
	work, bare := t.TempDir(), filepath.Join(t.TempDir(), "stores.git")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", work, "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("# Stores\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build(work)
	run("add", "-A")
	run("commit", "-q", "-m", "Start the stores repo")
	run("clone", "-q", "--bare", work, bare)
	return "file://" + bare
}

// createProblem posts a create and returns the status and problem document.
func createProblem(t *testing.T, base string) (int, openapi.Problem, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/stores", strings.NewReader(`{"name":"refused-shop","engine":"medusa"}`))
	req.Header.Set(openapi.UserHeader, "alice")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p openapi.Problem
	_ = json.Unmarshal(body, &p)
	return resp.StatusCode, p, resp.Header.Get("Content-Type")
}

// TestRefusalsAreProblemDocuments: a stores repo the Writer refuses to
// write (a symbolic link on the stores path) and a forge that refuses the
// pull request answer 503 problem documents that say why, not a 500.
func TestRefusalsAreProblemDocuments(t *testing.T) {
	t.Run("a symbolic link in the stores repo", func(t *testing.T) {
		outside := t.TempDir()
		url := storesRepo(t, func(work string) {
			if err := os.Symlink(outside, filepath.Join(work, "stores")); err != nil {
				t.Fatal(err)
			}
		})
		api, _ := newGitAPI(t, gitsync.WriterOptions{Remote: gitsync.Remote{URL: url, Branch: "main", Path: "stores"}})
		status, p, ct := createProblem(t, api.URL)
		if status != http.StatusServiceUnavailable || ct != "application/problem+json" || !strings.Contains(p.Detail, "stores is a symbolic link") {
			t.Fatalf("create through a linked stores directory: %d %s %+v", status, ct, p)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Fatalf("the create wrote outside the working copy: %v", entries)
		}
	})
	t.Run("a forge that refuses the pull request", func(t *testing.T) {
		forgeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"token does not have at least one of required scope(s): [write:repository]"}`))
		}))
		defer forgeSrv.Close()
		forge, err := gitsync.NewForge(gitsync.ForgeConfig{Kind: "gitea", URL: forgeSrv.URL, Repo: "org/stores", Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		api, _ := newGitAPI(t, gitsync.WriterOptions{Remote: gitsync.Remote{URL: storesRepo(t, func(string) {}), Branch: "main", Path: "stores"},
			Mode: gitsync.ModePullRequest, Forge: forge})
		status, p, ct := createProblem(t, api.URL)
		if status != http.StatusServiceUnavailable || ct != "application/problem+json" || !strings.Contains(p.Detail, "403 Forbidden: token does not have") {
			t.Fatalf("create with a forge that refuses: %d %s %+v", status, ct, p)
		}
	})
}
