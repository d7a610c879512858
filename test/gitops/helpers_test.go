package gitops_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/openapi"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// call sends a request as user and decodes a JSON answer into out.
func call(t testing.TB, method, url, user, body string, out any) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set(openapi.UserHeader, user)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
	}
	return resp.StatusCode, string(data)
}

// bareGit runs git in a bare repository of the test's Git server.
func bareGit(t testing.TB, repo string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", filepath.Join(git.Root, repo+".git")}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// fileAt returns a file's content at the tip of main, or "" when absent.
func fileAt(t testing.TB, repo, path string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", filepath.Join(git.Root, repo+".git"), "show", "main:"+path).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// liveStore reads a Store from the API server; nil when there is none.
func liveStore(t testing.TB, name string) *v1alpha1.Store {
	t.Helper()
	var s v1alpha1.Store
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &s); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		t.Fatal(err)
	}
	return &s
}

func manifest(name, owner, engine string) []byte {
	return []byte("apiVersion: storefleet.dev/v1alpha1\nkind: Store\nmetadata:\n  name: " + name + "\nspec:\n  engine: " + engine + "\n  owner: " + owner + "\n")
}
