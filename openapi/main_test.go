package openapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

// The cluster tests run the API against a real API server, started by the
// first of them (clusterTest); no operator runs here, so stores stay Pending
// unless a test writes their status (the operator's end-to-end path is
// tested in cmd/storefleet). The pure tests (validation, problem mapping,
// authentication, the document) use newUnitServer and start nothing.
var (
	shared testenv.SharedCluster
	// cluster and stores are set by clusterTest.
	cluster *devcluster.Cluster
	stores  *openapi.StoreCache

	setUp    sync.Once
	setUpErr error
	// stopStores ends the store cache, before the cluster stops.
	stopStores = func() {}
)

const platformNamespace = "storefleet-system"

func TestMain(m *testing.M) {
	code := m.Run()
	stopStores()
	if err := shared.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: stop the local cluster: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// clusterTest starts the package's cluster, its platform namespace and the
// store cache, on its first call; every cluster test calls it first. When
// they cannot start, the test fails (never skips, except under make unit).
func clusterTest(t testing.TB) {
	t.Helper()
	c := shared.Get(t)
	setUp.Do(func() {
		cluster = c
		ctx, cancel := context.WithCancel(context.Background())
		stopStores = cancel
		sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
		defer scancel()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: platformNamespace}}
		if err := cluster.Client.Create(sctx, ns); err != nil {
			setUpErr = fmt.Errorf("create %s: %w", platformNamespace, err)
			return
		}
		var err error
		if stores, err = openapi.NewStoreCache(cluster.Config, devcluster.Scheme()); err == nil {
			err = stores.Start(ctx)
		}
		if err != nil {
			setUpErr = fmt.Errorf("store cache: %w", err)
		}
	})
	if setUpErr != nil {
		t.Fatalf("set up the API's cluster: %v", setUpErr)
	}
}

// options tune a test's server; the defaults trust loopback (humatest's
// address) as the proxy and keep limits out of the way.
type options struct {
	cfg  openapi.Config
	deps func(*openapi.Deps)
}

// newServer serves the API from the package's cluster (a cluster test).
func newServer(t testing.TB, opts options) *openapi.Server {
	t.Helper()
	clusterTest(t)
	return build(t, opts, openapi.Deps{
		Stores:  stores,
		Intents: openapi.ClusterIntents{Client: cluster.Client},
		Lock:    &openapi.LeaseLock{Client: cluster.Client, Namespace: platformNamespace, Holder: t.Name()},
		Client:  cluster.Client,
		Ready:   func(context.Context) error { return nil },
	})
}

func build(t testing.TB, opts options, deps openapi.Deps) *openapi.Server {
	cfg := opts.cfg
	if cfg.Trusted == nil {
		cfg.Trusted, _ = openapi.ParseTrustedProxies("127.0.0.1/32")
	}
	if cfg.Auth == nil {
		cfg.Auth = openapi.HeaderAuth{Trusted: cfg.Trusted, AdminGroup: "admins"}
	}
	if cfg.AllowedDomains == nil {
		cfg.AllowedDomains = []string{"localtest.me", "shops.example.com"}
	}
	if cfg.MaxStoresPerUser == 0 {
		cfg.MaxStoresPerUser = 5
	}
	if cfg.MutationsPerMinute == 0 {
		cfg.MutationsPerMinute = 100000
	}
	if opts.deps != nil {
		opts.deps(&deps)
	}
	return openapi.New(cfg, deps)
}

func newTestAPI(t *testing.T, opts options) (*openapi.Server, humatest.TestAPI) {
	t.Helper()
	s := newServer(t, opts)
	return s, humatest.Wrap(t, s.API())
}

func newUnitTestAPI(t *testing.T, opts options) (*openapi.Server, humatest.TestAPI) {
	t.Helper()
	s := newUnitServer(t, opts)
	return s, humatest.Wrap(t, s.API())
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// user is a user id of the test's own, so quotas of tests never mix.
func user(t testing.TB, suffix string) string {
	return strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-") + "-" + suffix
}

func as(u string) string { return openapi.UserHeader + ": " + u }

func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body.String(), err)
	}
	return v
}

func problem(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) openapi.Problem {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	p := decode[openapi.Problem](t, rec)
	if p.Type != openapi.ProblemTypeBase+code || p.Status != status || p.Title == "" {
		t.Fatalf("problem %+v, want type %s", p, code)
	}
	if p.RequestID == "" || p.RequestID != rec.Header().Get(openapi.RequestIDHeader) {
		t.Fatalf("problem requestId %q, header %q", p.RequestID, rec.Header().Get(openapi.RequestIDHeader))
	}
	return p
}

// cleanup removes test stores for good (no operator runs here to drop a finalizer).
func cleanup(t testing.TB, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			var s v1alpha1.Store
			if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: n}, &s); err != nil {
				continue
			}
			s.Finalizers = nil
			_ = cluster.Client.Update(context.Background(), &s)
			_ = cluster.Client.Delete(context.Background(), &s)
		}
	})
}

func waitGone(t testing.TB, name string) {
	testenv.Eventually(t, 10*time.Second, "store "+name+" gone", func() (bool, error) {
		s, err := stores.Get(context.Background(), name)
		return s == nil, err
	})
}

// cleanupOwner removes every store of a user.
func cleanupOwner(t testing.TB, owner string) {
	var l v1alpha1.StoreList
	if err := cluster.Client.List(context.Background(), &l, client.MatchingLabels{v1alpha1.OwnerLabel: v1alpha1.OwnerLabelValue(owner)}); err != nil {
		t.Errorf("list %s's stores: %v", owner, err)
		return
	}
	for i := range l.Items {
		_ = cluster.Client.Delete(context.Background(), &l.Items[i])
	}
}
