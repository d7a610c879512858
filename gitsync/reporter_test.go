package gitsync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
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
