package gitops_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/gitserver"
	"github.com/storefleet/storefleet/test/testenv"
)

// readerReplica is one operator replica's Git reader: a manager with leader
// election, the reader as its leader-only runnable, and the webhook served
// whether it leads or not (as the operator serves it).
type readerReplica struct {
	mgr     manager.Manager
	reader  *gitsync.Reader
	webhook *httptest.Server
}

func startReplica(t *testing.T, ctx context.Context, remote gitsync.Remote, ns string) *readerReplica {
	t.Helper()
	mgr, err := manager.New(cluster.Config, manager.Options{Scheme: devcluster.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		LeaderElection: true, LeaderElectionID: "gitops-replicas-test", LeaderElectionNamespace: ns, LeaderElectionReleaseOnCancel: true})
	if err != nil {
		t.Fatal(err)
	}
	watcher, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: devcluster.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := gitsync.NewReader(gitsync.ReaderOptions{Remote: remote, Dir: t.TempDir(), Interval: 10 * time.Minute, MaxPrune: 3,
		WebhookSecret: []byte(secret), Namespace: ns, Client: mgr.GetClient(), Watcher: watcher, Log: mgr.GetLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(reader); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { <-done })
	r := &readerReplica{mgr: mgr, reader: reader, webhook: httptest.NewServer(reader)}
	t.Cleanup(r.webhook.Close)
	return r
}

// TestWebhookOnAnyReplicaSyncs: with two replicas, only the leader's reader
// syncs; a push webhook that lands on the other one still makes the leader
// sync at once (not at the next interval, ten minutes away).
func TestWebhookOnAnyReplicaSyncs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const ns = "gitops-replicas"
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	url, err := git.Init("stores-replicas")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := git.Commit("stores-replicas", "main", "Start", map[string][]byte{"stores/.keep": {}}); err != nil {
		t.Fatal(err)
	}
	remote := gitsync.Remote{URL: url, Branch: "main", Path: "stores"}

	leader := startReplica(t, ctx, remote, ns)
	select {
	case <-leader.mgr.Elected():
	case <-time.After(60 * time.Second):
		t.Fatal("the first replica was not elected within a minute")
	}
	follower := startReplica(t, ctx, remote, ns)
	// The leader's first sync has run once its status is recorded.
	testenv.Eventually(t, 30*time.Second, "the leader's first sync", func() (bool, error) {
		st, err := gitsync.ReadStatus(ctx, cluster.Client, ns)
		return st != nil && st.Commit != "", err
	})
	select {
	case <-follower.mgr.Elected():
		t.Fatal("both replicas lead")
	default:
	}

	for i, tc := range []struct {
		to    *readerReplica
		store string
	}{{follower, "replica-shop"}, {leader, "leader-shop"}, {follower, "replica-shop-2"}} {
		if _, err := git.Commit("stores-replicas", "main", "Add "+tc.store, map[string][]byte{"stores/" + tc.store + ".yaml": manifest(tc.store, "erin", "medusa")}); err != nil {
			t.Fatal(err)
		}
		status, err := gitserver.PostSignedWebhook(tc.to.webhook.URL, []byte(secret))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("webhook %d: %d %v", i, status, err)
		}
		testenv.Eventually(t, 20*time.Second, tc.store+" synced after the webhook", func() (bool, error) {
			return liveStore(t, tc.store) != nil, nil
		})
	}
	cancel()
	for _, name := range []string{"replica-shop", "leader-shop", "replica-shop-2"} {
		if s := liveStore(t, name); s != nil {
			_ = cluster.Client.Delete(context.Background(), s)
		}
	}
}

// TestWebhookThatCannotBePassedOnIsRedelivered: a replica that does not
// lead and cannot reach the API server to pass an accepted webhook on to the
// leader answers 503, so the forge shows a failed delivery and redelivers
// it, instead of the push being forgotten until the next interval. (Passing
// it on when the API server answers is TestWebhookOnAnyReplicaSyncs.)
func TestWebhookThatCannotBePassedOnIsRedelivered(t *testing.T) {
	// A real client of an API server that is gone: the address of a port
	// that was listened on and closed refuses every connection.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "https://" + l.Addr().String()
	l.Close()
	unreachable, err := client.New(&rest.Config{Host: gone, Timeout: 10 * time.Second, TLSClientConfig: rest.TLSClientConfig{Insecure: true}},
		client.Options{Scheme: devcluster.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// Never started, so it does not lead: a webhook must be passed on.
	follower, err := gitsync.NewReader(gitsync.ReaderOptions{Remote: gitsync.Remote{URL: storesURL, Branch: "main", Path: "stores"}, Dir: t.TempDir(),
		WebhookSecret: []byte(secret), Namespace: namespace, Client: unreachable, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(follower)
	defer hook.Close()
	if status, err := gitserver.PostSignedWebhook(hook.URL, []byte(secret)); err != nil || status != http.StatusServiceUnavailable {
		t.Errorf("webhook that could not be passed on: %d (%v), want 503", status, err)
	}
}
