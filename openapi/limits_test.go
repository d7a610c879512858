package openapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/openapi"
)

// TestQuotaHoldsUnderConcurrencyAcrossReplicas: 50 concurrent creates by one
// user against two API replicas (separate servers, caches and lock holders
// over one cluster) never exceed the quota.
func TestQuotaHoldsUnderConcurrencyAcrossReplicas(t *testing.T) {
	clusterTest(t)
	const quota, attempts = 5, 50
	alice := user(t, "alice")
	replicaCache := func(t *testing.T) *openapi.StoreCache {
		c, err := openapi.NewStoreCache(cluster.Config, devcluster.Scheme())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	var replicas []http.Handler
	for i := range 2 {
		c := replicaCache(t)
		s := newServer(t, options{cfg: openapi.Config{MaxStoresPerUser: quota}, deps: func(d *openapi.Deps) {
			d.Stores = c
			d.Lock = &openapi.LeaseLock{Client: cluster.Client, Namespace: platformNamespace, Holder: fmt.Sprintf("replica-%d", i)}
		}})
		replicas = append(replicas, s.Handler())
	}
	var names []string
	for i := range attempts {
		names = append(names, fmt.Sprintf("race-%02d", i))
	}
	cleanup(t, names...)

	codes := make([]int, attempts)
	bodies := make([]string, attempts)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/stores", strings.NewReader(`{"name":"`+n+`","engine":"medusa"}`))
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(openapi.UserHeader, alice)
			rec := httptest.NewRecorder()
			replicas[i%2].ServeHTTP(rec, r)
			codes[i], bodies[i] = rec.Code, rec.Body.String()
		})
	}
	wg.Wait()
	created, rejected := 0, 0
	for i, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusForbidden:
			rejected++
			if !strings.Contains(bodies[i], `"limit":`+strconv.Itoa(quota)) || !strings.Contains(bodies[i], "quota-exceeded") {
				t.Errorf("quota problem lacks the limit: %s", bodies[i])
			}
		default:
			t.Errorf("create %s: %d %s", names[i], c, bodies[i])
		}
	}
	var l v1alpha1.StoreList
	if err := cluster.Client.List(context.Background(), &l, client.MatchingLabels{v1alpha1.OwnerLabel: v1alpha1.OwnerLabelValue(alice)}); err != nil {
		t.Fatal(err)
	}
	if created != quota || rejected != attempts-quota || len(l.Items) != quota {
		t.Fatalf("created %d, rejected %d, stores in the cluster %d; want %d, %d, %d", created, rejected, len(l.Items), quota, attempts-quota, quota)
	}
}

func TestRateLimitPerClientIP(t *testing.T) {
	s, api := newUnitTestAPI(t, options{cfg: openapi.Config{MutationsPerMinute: 10}})
	alice := user(t, "alice")
	for i := range 10 {
		// Mutations that fail still spend a token: probing costs the same.
		if rec := api.Post("/api/v1/stores/no-such-store/retry", as(alice)); rec.Code != http.StatusNotFound {
			t.Fatalf("request %d: %d %s", i+1, rec.Code, rec.Body.String())
		}
	}
	rec := api.Post("/api/v1/stores/no-such-store/retry", as(alice))
	p := problem(t, rec, http.StatusTooManyRequests, "rate-limited")
	ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || ra < 1 || ra > 6 {
		t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	if p.Limit != 10 {
		t.Errorf("limit %d", p.Limit)
	}
	// Reads are not limited.
	if rec := api.Get("/api/v1/stores", as(alice)); rec.Code != http.StatusOK {
		t.Errorf("read after the limit: %d", rec.Code)
	}
	// Another client (behind the trusted proxy) has its own bucket.
	r := httptest.NewRequest(http.MethodPost, "/api/v1/stores/no-such-store/retry", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "203.0.113.50")
	r.Header.Set(openapi.UserHeader, alice)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("other client: %d %s", w.Code, w.Body.String())
	}
}

// TestQuotaLockOfACrashedReplicaIsTakenOver: a replica that died holding a
// user's lock does not block that user beyond the lock's TTL.
func TestQuotaLockOfACrashedReplicaIsTakenOver(t *testing.T) {
	_, api := newTestAPI(t, options{})
	alice := user(t, "alice")
	cleanup(t, "after-crash")
	lock := &openapi.LeaseLock{Client: cluster.Client, Namespace: platformNamespace, Holder: "crashed-replica", TTL: time.Second}
	// The replica's process ends: its context with it, so nothing renews
	// the Lease any more.
	replica, crash := context.WithCancel(context.Background())
	if _, _, err := lock.Lock(replica, alice); err != nil {
		t.Fatal(err)
	}
	crash()
	// Never released. The next create waits for the TTL, then proceeds.
	start := time.Now()
	rec := api.Post("/api/v1/stores", as(alice), map[string]any{"name": "after-crash", "engine": "medusa"})
	if rec.Code != http.StatusCreated {
		t.Fatalf("create after a crashed holder: %d %s", rec.Code, rec.Body.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("create took %s behind an expired lock", took)
	}
}
