package gitops_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/test/testenv"
)

// recordingForge remembers the commits it was asked about. It stands in for
// the forge only where the question is which commits reach it at all; the
// real forge client is TestPullRequestsOnGitea's.
type recordingForge struct {
	mu       sync.Mutex
	statuses []string
	lookups  []string
}

func (f *recordingForge) OpenPullRequest(context.Context, gitsync.PullRequestSpec) (gitsync.PullRequest, error) {
	return gitsync.PullRequest{}, nil
}

func (f *recordingForge) PullRequestFor(_ context.Context, commit string) (*gitsync.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, commit)
	return nil, nil
}

func (f *recordingForge) SetStatus(_ context.Context, commit string, st gitsync.CommitStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, st.Context+" on "+commit)
	return nil
}

func (f *recordingForge) Comment(context.Context, int, string) error { return nil }

func (f *recordingForge) OpenPullRequestFrom(context.Context, string) (*gitsync.PullRequest, error) {
	return nil, nil
}

func (f *recordingForge) ClosePullRequest(context.Context, int) error { return nil }

// TestReporterReportsOnlyCommitsTheReaderApplied: a Store's commit
// annotation is anyone's to write; the reporter posts a status (and looks
// up a pull request) only for the commit the reader applied that very
// store from — never for a path, a foreign commit, or another store's.
func TestReporterReportsOnlyCommitsTheReaderApplied(t *testing.T) {
	ctx := context.Background()
	const repo, owner = "stores-reported", "rita"
	url, err := git.Init(repo)
	if err != nil {
		t.Fatal(err)
	}
	shopCommit, err := git.Commit(repo, "main", "Add reported-shop", map[string][]byte{"stores/reported-shop.yaml": manifest("reported-shop", owner, "medusa")})
	if err != nil {
		t.Fatal(err)
	}
	newReader := func() *gitsync.Reader {
		t.Helper()
		r, err := gitsync.NewReader(gitsync.ReaderOptions{Remote: gitsync.Remote{URL: url, Branch: "main", Path: "stores"}, Dir: t.TempDir(),
			Interval: 10 * time.Minute, MaxPrune: 3, Client: cluster.Client, Log: logr.Discard()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// One reader applies the shop from Git; the reporter gets another one
	// that has not synced yet, as after an operator restart (the record of
	// stamped commits is in memory).
	if st := newReader().Sync(ctx); st.Error != "" || st.Commit != shopCommit {
		t.Fatalf("first sync: commit %s, error %q; want %s", st.Commit, st.Error, shopCommit)
	}
	handMade := map[string]string{
		"reported-escape":   "../../repos/victim/other",
		"reported-foreign":  "fedcba9876543210fedcba9876543210fedcba98",
		"reported-borrowed": shopCommit, // the shop's commit, not this store's
	}
	for name, commit := range handMade {
		s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{v1alpha1.CommitAnnotation: commit}},
			Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: owner}}
		if err := cluster.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"reported-shop", "reported-escape", "reported-foreign", "reported-borrowed"}
	t.Cleanup(func() {
		for _, name := range names {
			if s := liveStore(t, name); s != nil {
				_ = cluster.Client.Delete(context.Background(), s)
			}
		}
	})
	// The operator provisions them all; a Ready store is the one that gets
	// a status and a pull request lookup.
	for _, name := range names {
		testenv.Eventually(t, 180*time.Second, name+" to be Ready", func() (bool, error) {
			s := liveStore(t, name)
			return s != nil && s.Status.Phase == v1alpha1.PhaseReady, nil
		})
	}

	restarted := newReader()
	rec := &recordingForge{}
	r := &gitsync.Reporter{Forge: rec, Commits: restarted, Client: cluster.Client, Log: logr.Discard()}
	reconcile := func(name string) ctrl.Result {
		t.Helper()
		res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
		if err != nil {
			t.Fatalf("reconcile %s: %v", name, err)
		}
		return res
	}

	// Before the reader's first sync nothing is known: try again later.
	if res := reconcile("reported-shop"); res.RequeueAfter <= 0 || len(rec.statuses) > 0 {
		t.Fatalf("before the reader synced: result %+v, statuses %v", res, rec.statuses)
	}
	if st := restarted.Sync(ctx); st.Error != "" {
		t.Fatalf("sync after the restart: %s", st.Error)
	}
	for _, name := range names {
		if res := reconcile(name); name != "reported-shop" && res.RequeueAfter != 0 {
			t.Errorf("%s is retried (%v) though it is never reported", name, res.RequeueAfter)
		}
	}
	if want := []string{"storefleet/reported-shop on " + shopCommit}; strings.Join(rec.statuses, "|") != strings.Join(want, "|") {
		t.Errorf("statuses posted: %q, want %q", rec.statuses, want)
	}
	if len(rec.lookups) != 1 || rec.lookups[0] != shopCommit {
		t.Errorf("pull request lookups: %q, want the shop's commit only", rec.lookups)
	}
}
