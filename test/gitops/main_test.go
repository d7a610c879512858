// Package gitops_test runs the Git intent inbox end to end: the Intent API
// committing to a real Git server over smart HTTP, the operator binary's Git
// reader syncing on webhooks, pull requests on a real Gitea with commit
// statuses and comments, and the reader's safety rules.
package gitops_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/gitintent"
	"github.com/storefleet/storefleet/internal/gitserver"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

const (
	namespace = "storefleet-system"
	secret    = "gitops-test-webhook-secret"
)

var (
	cluster    *devcluster.Cluster
	workdir    string
	git        *gitserver.Server
	storesURL  string // the operator's reader syncs this repo
	webhookURL string // the operator's webhook
	forge      *devcluster.Gitea
	stores     *openapi.StoreCache
)

func TestMain(m *testing.M) { testenv.ExitMain(run(m)) }

func run(m *testing.M) (int, error) {
	var err error
	var binary string
	if workdir, binary, err = testenv.TestBinary("../..", "storefleet-gitops-test-"); err != nil {
		return 0, err
	}
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The forge first: its one-time build is CPU-bound and would slow the
	// cluster's start.
	if forge, err = devcluster.StartGitea(ctx, filepath.Join(workdir, "forge"), os.Stdout); err != nil {
		return 0, fmt.Errorf("start gitea: %w", err)
	}
	defer forge.Stop()
	sctx, scancel := context.WithTimeout(ctx, 3*time.Minute)
	defer scancel()
	if cluster, err = devcluster.Start(sctx, devcluster.Options{}); err != nil {
		return 0, err
	}
	defer cluster.Stop()
	if err := cluster.Client.Create(sctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return 0, err
	}
	if git, err = gitserver.Start(filepath.Join(workdir, "git")); err != nil {
		return 0, err
	}
	defer git.Close()
	if storesURL, err = git.Init("stores"); err != nil {
		return 0, err
	}
	if _, err := git.Commit("stores", "main", "Start the stores repo", map[string][]byte{"README.md": []byte("# Stores\n")}); err != nil {
		return 0, err
	}
	port, err := devcluster.FreePort()
	if err != nil {
		return 0, err
	}
	webhookURL = fmt.Sprintf("http://127.0.0.1:%d%s", port, gitsync.WebhookPath)
	git.WebhookOnPush("stores", webhookURL, []byte(secret))
	secretFile := filepath.Join(workdir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		return 0, err
	}
	op, err := testenv.StartOperator(binary, cluster, workdir,
		"--metrics-addr", "0", "--workers", "8", "--flux-namespace", namespace,
		"--git-url", storesURL, "--git-path", "stores", "--git-workdir", filepath.Join(workdir, "operator-git"),
		// Webhooks drive the syncs; the interval is only the fallback.
		"--git-sync-interval", "10m", "--git-max-prune", "3",
		"--git-webhook-addr", fmt.Sprintf("127.0.0.1:%d", port), "--git-webhook-secret-file", secretFile)
	if err != nil {
		return 0, err
	}
	defer op.Stop()

	if stores, err = openapi.NewStoreCache(cluster.Config, devcluster.Scheme()); err != nil {
		return 0, err
	}
	if err := stores.Start(ctx); err != nil {
		return 0, err
	}
	code := m.Run()
	if code != 0 {
		fmt.Printf("logs kept in %s\n", workdir)
	} else {
		os.RemoveAll(workdir)
	}
	return code, nil
}

// newGitAPI serves the Intent API with the Git intent on repoURL.
func newGitAPI(t testing.TB, opts gitsync.WriterOptions) (*httptest.Server, *gitsync.Writer) {
	t.Helper()
	return newReplica(t, opts, replica{})
}

// replica is how one Intent API instance differs from newGitAPI's.
type replica struct {
	// maxStores is the per-user quota (100 when 0).
	maxStores int
	// lockTTL and recentWindow configure the quota Lease (its defaults when 0).
	lockTTL, recentWindow time.Duration
}

// newReplica serves one Intent API instance with the Git intent; several
// against one cluster and repo are the replicas of one deployment.
func newReplica(t testing.TB, opts gitsync.WriterOptions, r replica) (*httptest.Server, *gitsync.Writer) {
	t.Helper()
	if r.maxStores == 0 {
		r.maxStores = 100
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Remote.Branch == "" {
		opts.Remote.Branch = "main"
	}
	if opts.Author.Name == "" {
		opts.Author = object.Signature{Name: "storefleet", Email: "storefleet@storefleet.dev"}
	}
	w, err := gitsync.NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	trusted, _ := openapi.ParseTrustedProxies("127.0.0.1/32")
	// Each replica its own ledger informer, as each API process has.
	ledger, err := gitintent.NewLedger(cluster.Config, devcluster.Scheme(), cluster.Client, namespace)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := ledger.Start(ctx); err != nil {
		t.Fatal(err)
	}
	intents := gitintent.Intents{Writer: w, Ledger: ledger}
	srv := openapi.New(openapi.Config{
		Auth: openapi.HeaderAuth{Trusted: trusted}, Trusted: trusted, MaxStoresPerUser: r.maxStores,
	}, openapi.Deps{
		Stores: openapi.PendingStores{Cache: stores, Intents: intents}, Intents: intents,
		Lock: &openapi.LeaseLock{Client: cluster.Client, Namespace: namespace, Holder: t.Name(),
			TTL: r.lockTTL, RecentWindow: r.recentWindow},
		Client: cluster.Client, Ready: func(context.Context) error { return nil },
		GitSync: gitintent.Status{Client: cluster.Client, Namespace: namespace},
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, w
}
