package gitsync

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// gitCmd runs the real git in dir.
func gitCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// storesRepo makes a bare repository (file:// URL) whose main branch holds
// what build puts in a fresh working tree.
func storesRepo(t *testing.T, build func(work string)) string {
	t.Helper()
	work, bare := t.TempDir(), filepath.Join(t.TempDir(), "stores.git")
	gitCmd(t, work, "init", "-q")
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("# Stores\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build(work)
	gitCmd(t, work, "add", "-A")
	gitCmd(t, work, "commit", "-q", "-m", "Start the stores repo")
	gitCmd(t, work, "clone", "-q", "--bare", work, bare)
	return "file://" + bare
}

func shop(name string) *v1alpha1.Store {
	return &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{v1alpha1.RequestedByAnnotation: "alice"}},
		Spec: v1alpha1.StoreSpec{Engine: "medusa", Owner: "alice"}}
}

// scriptedForge answers POST /pulls with the given responses in turn (the
// last one again once they run out).
type scriptedForge struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	calls   []time.Time
}

func (f *scriptedForge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/pulls") {
		// The open pull requests, asked after a 409/422: none.
		_, _ = w.Write([]byte(`[]`))
		return
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/pulls") {
		http.Error(w, `{"message":"unexpected"}`, http.StatusNotFound)
		return
	}
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, time.Now())
	answer := f.answers[min(n, len(f.answers)-1)]
	f.mu.Unlock()
	answer(w)
}

func answer(status int, retryAfter, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

var opened = answer(http.StatusCreated, "", `{"number":7,"html_url":"http://forge.test/org/stores/pulls/7"}`)

// TestForgeRefusalsAreNotRetried: in pull-request mode, a forge that
// refuses (403, 422, 429 without Retry-After, or a Retry-After longer than
// the Writer waits) fails the create at once with the forge's message; one
// that fails for a moment (5xx, 429 with a short Retry-After) is retried.
func TestForgeRefusalsAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []func(http.ResponseWriter)
		calls    int
		wantErr  string
		minDelay time.Duration
	}{
		{name: "token without permission", answers: []func(http.ResponseWriter){answer(http.StatusForbidden, "", `{"message":"token does not have at least one of required scope(s): [write:repository]"}`)},
			calls: 1, wantErr: "403 Forbidden: token does not have at least one of required scope(s)"},
		{name: "rejected payload", answers: []func(http.ResponseWriter){answer(http.StatusUnprocessableEntity, "", `{"message":"Invalid PullRequest: There are no changes between the head and the base"}`)},
			calls: 1, wantErr: "There are no changes"},
		{name: "throttled without Retry-After", answers: []func(http.ResponseWriter){answer(http.StatusTooManyRequests, "", `{"message":"slow down"}`)},
			calls: 1, wantErr: "429 Too Many Requests: slow down"},
		{name: "throttled for too long", answers: []func(http.ResponseWriter){answer(http.StatusTooManyRequests, "3600", `{"message":"come back in an hour"}`)},
			calls: 1, wantErr: "come back in an hour"},
		{name: "forge failing for a moment", answers: []func(http.ResponseWriter){answer(http.StatusBadGateway, "", "bad gateway"), answer(http.StatusServiceUnavailable, "", `{"message":"restarting"}`), opened},
			calls: 3},
		{name: "throttled briefly", answers: []func(http.ResponseWriter){answer(http.StatusTooManyRequests, "1", `{"message":"slow down"}`), opened},
			calls: 2, minDelay: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &scriptedForge{answers: tc.answers}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			forge, err := NewForge(ForgeConfig{Kind: "gitea", URL: srv.URL, Repo: "org/stores", Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(WriterOptions{Remote: Remote{URL: storesRepo(t, func(string) {}), Branch: "main", Path: "stores"},
				Dir: t.TempDir(), Mode: ModePullRequest, Forge: forge, Log: logr.Discard()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err = w.Create(ctx, shop("pr-shop"))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("create: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("create: %v, want an error with %q", err, tc.wantErr)
			}
			if len(fake.calls) != tc.calls {
				t.Errorf("the forge was called %d times, want %d", len(fake.calls), tc.calls)
			}
			if tc.minDelay > 0 && len(fake.calls) > 1 {
				if d := fake.calls[1].Sub(fake.calls[0]); d < tc.minDelay {
					t.Errorf("retried after %v, before the forge's Retry-After of %v", d, tc.minDelay)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Tue, 01 Dec 2026 12:00:30 GMT": 30 * time.Second,
		"Tue, 01 Dec 2026 11:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestWriterNeverFollowsSymlinks: a stores repo whose stores path holds a
// symbolic link (to a file or a directory outside the working copy) makes
// the Writer refuse the change with a clear error, and nothing outside the
// working copy is read or written; once the repository has plain files
// again, writing works.
func TestWriterNeverFollowsSymlinks(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "passwd")
	const original = "root:x:0:0:root:/root:/bin/bash\n"
	if err := os.WriteFile(victim, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		build  func(work string)
		create bool
		// wantErr is the error (wrapped); want, a part of its message.
		wantErr error
		want    string
	}{
		// The link claims the name: a create is an existing store, and
		// nothing is written.
		{name: "manifest linked to a file outside", create: true, wantErr: ErrDeclared, want: "stores/shop.yaml", build: func(work string) {
			mkdir(t, filepath.Join(work, "stores"))
			symlink(t, victim, filepath.Join(work, "stores", "shop.yaml"))
		}},
		{name: "manifest removal through a link", create: false, want: "stores/shop.yaml is a symbolic link", build: func(work string) {
			mkdir(t, filepath.Join(work, "stores"))
			symlink(t, victim, filepath.Join(work, "stores", "shop.yaml"))
		}},
		{name: "stores directory linked outside", create: true, want: "stores is a symbolic link", build: func(work string) {
			symlink(t, outside, filepath.Join(work, "stores"))
		}},
		{name: "stores directory linked to the parent", create: true, want: "stores is a symbolic link", build: func(work string) {
			symlink(t, "..", filepath.Join(work, "stores"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := storesRepo(t, tc.build)
			w, err := NewWriter(WriterOptions{Remote: Remote{URL: url, Branch: "main", Path: "stores"}, Dir: t.TempDir(), Log: logr.Discard()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			if tc.create {
				_, err = w.Create(ctx, shop("shop"))
			} else {
				err = w.Delete(ctx, shop("shop"))
			}
			if tc.wantErr == nil {
				tc.wantErr = ErrSymlink
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("write through a link: %v, want %q", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the refusal took %v: it was retried", d)
			}
			if data, err := os.ReadFile(victim); err != nil || string(data) != original {
				t.Fatalf("the file outside the working copy was changed: %q, %v", data, err)
			}
			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 {
				t.Fatalf("files appeared outside the working copy: %v", entries)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(w.clone.dir), "shop.yaml")); err == nil {
				t.Fatal("shop.yaml was written beside the working copy")
			}
		})
	}

	t.Run("a link replaced by a directory", func(t *testing.T) {
		url := storesRepo(t, func(work string) { symlink(t, outside, filepath.Join(work, "stores")) })
		w, err := NewWriter(WriterOptions{Remote: Remote{URL: url, Branch: "main", Path: "stores"}, Dir: t.TempDir(), Log: logr.Discard()})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := w.Create(ctx, shop("shop")); !errors.Is(err, ErrSymlink) {
			t.Fatalf("first create: %v", err)
		}
		// Someone fixes the repository: stores is a directory now. The link
		// the first checkout left must not carry the next write outside.
		fix := t.TempDir()
		gitCmd(t, fix, "clone", "-q", url, ".")
		gitCmd(t, fix, "rm", "-q", "stores")
		mkdir(t, filepath.Join(fix, "stores"))
		if err := os.WriteFile(filepath.Join(fix, "stores", KeepFile), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		gitCmd(t, fix, "add", "-A")
		gitCmd(t, fix, "commit", "-q", "-m", "stores is a directory")
		gitCmd(t, fix, "push", "-q", "origin", "HEAD:main")
		if _, err := w.Create(ctx, shop("shop")); err != nil {
			t.Fatalf("create after the fix: %v", err)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 1 {
			t.Fatalf("files appeared outside the working copy: %v", entries)
		}
	})
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
