package gitsync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

const (
	sha1Commit   = "0123456789abcdef0123456789abcdef01234567"
	sha256Commit = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestValidCommitID(t *testing.T) {
	for id, want := range map[string]bool{
		sha1Commit:                  true,
		sha256Commit:                true,
		"":                          false,
		"0123456":                   false, // abbreviated
		strings.ToUpper(sha1Commit): false,
		"../../repos/x":             false,
		sha1Commit[:39] + "/":       false,
		sha1Commit + "0":            false,
		"main":                      false,
		sha1Commit[:39] + "g":       false,
	} {
		if got := ValidCommitID(id); got != want {
			t.Errorf("ValidCommitID(%q) = %v, want %v", id, got, want)
		}
	}
}

// recordingForge remembers the commits it was asked about.
type recordingForge struct {
	mu       sync.Mutex
	statuses []string
	lookups  []string
}

func (f *recordingForge) OpenPullRequest(context.Context, PullRequestSpec) (PullRequest, error) {
	return PullRequest{}, nil
}

func (f *recordingForge) PullRequestFor(_ context.Context, commit string) (*PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, commit)
	return nil, nil
}

func (f *recordingForge) SetStatus(_ context.Context, commit string, st CommitStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, st.Context+" on "+commit)
	return nil
}

func (f *recordingForge) Comment(context.Context, int, string) error { return nil }

func (f *recordingForge) OpenPullRequestFrom(context.Context, string) (*PullRequest, error) {
	return nil, nil
}

func (f *recordingForge) ClosePullRequest(context.Context, int) error { return nil }

func readyStore(name, commit string) *v1alpha1.Store {
	return &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{v1alpha1.CommitAnnotation: commit}},
		Spec:       v1alpha1.StoreSpec{Owner: "alice"},
		Status:     v1alpha1.StoreStatus{Phase: v1alpha1.PhaseReady},
	}
}

// TestReporterReportsOnlyCommitsTheReaderApplied: a Store's commit
// annotation is anyone's to write; the reporter posts a status (and looks
// up a pull request) only for the commit the reader applied that very
// store from — never for a path, a foreign commit, or another store's.
func TestReporterReportsOnlyCommitsTheReaderApplied(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	stores := []*v1alpha1.Store{
		readyStore("shop", sha1Commit),
		readyStore("escape", "../../repos/victim/other"),
		readyStore("foreign", "fedcba9876543210fedcba9876543210fedcba98"),
		readyStore("borrowed", sha1Commit), // the shop's commit, not this store's
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, s := range stores {
		b = b.WithObjects(s)
	}
	c := b.Build()
	record := newStampedCommits(16)
	forge := &recordingForge{}
	r := &Reporter{Forge: forge, Commits: record, Client: c, Log: logr.Discard()}
	reconcile := func(name string) ctrl.Result {
		t.Helper()
		res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
		if err != nil {
			t.Fatalf("reconcile %s: %v", name, err)
		}
		return res
	}

	// Before the reader's first sync nothing is known: try again later.
	if res := reconcile("shop"); res.RequeueAfter <= 0 || len(forge.statuses) > 0 {
		t.Fatalf("before the reader synced: result %+v, statuses %v", res, forge.statuses)
	}
	record.add("shop", sha1Commit)
	record.markKnown()
	for _, s := range stores {
		if res := reconcile(s.Name); s.Name != "shop" && res.RequeueAfter != 0 {
			t.Errorf("%s is retried (%v) though it is never reported", s.Name, res.RequeueAfter)
		}
	}
	if want := []string{"storefleet/shop on " + sha1Commit}; strings.Join(forge.statuses, "|") != strings.Join(want, "|") {
		t.Errorf("statuses posted: %q, want %q", forge.statuses, want)
	}
	if len(forge.lookups) != 1 || forge.lookups[0] != sha1Commit {
		t.Errorf("pull request lookups: %q, want the shop's commit only", forge.lookups)
	}
}

// TestStampedCommitsIsBounded: the record forgets the least recently
// stamped store first, and a store stamped again at every sync stays.
func TestStampedCommitsIsBounded(t *testing.T) {
	s := newStampedCommits(2)
	s.add("a", sha1Commit)
	s.add("b", sha1Commit)
	s.add("a", sha1Commit) // a sync stamps a again
	s.add("c", sha1Commit)
	for store, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if got, _ := s.Stamped(store, sha1Commit); got != want {
			t.Errorf("Stamped(%s) = %v, want %v", store, got, want)
		}
	}
	if len(s.index) != 2 || s.order.Len() != 2 {
		t.Errorf("record holds %d/%d entries, want 2", len(s.index), s.order.Len())
	}
}

// TestForgeSendsOnlyCommitIDs: whatever reaches the forge client, a value
// that is not a commit id is refused before any request is made.
func TestForgeSendsOnlyCommitIDs(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	f, err := NewForge(ForgeConfig{Kind: "gitea", URL: srv.URL, Repo: "org/stores", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, bad := range []string{"../../repos/victim/other", "main", sha1Commit[:12], sha1Commit + "/../x"} {
		if err := f.SetStatus(ctx, bad, CommitStatus{Context: "storefleet/x", State: StateSuccess}); err == nil || !strings.Contains(err.Error(), "not a full commit id") {
			t.Errorf("SetStatus(%q) = %v, want a refusal", bad, err)
		}
		if _, err := f.PullRequestFor(ctx, bad); err == nil {
			t.Errorf("PullRequestFor(%q) was not refused", bad)
		}
	}
	if len(paths) != 0 {
		t.Fatalf("requests reached the forge: %q", paths)
	}
	if err := f.SetStatus(ctx, sha256Commit, CommitStatus{Context: "storefleet/x", State: StateSuccess}); err != nil {
		t.Fatal(err)
	}
	if want := "/api/v1/repos/org/stores/statuses/" + sha256Commit; len(paths) != 1 || paths[0] != want {
		t.Errorf("requests %q, want one to %s", paths, want)
	}
}
