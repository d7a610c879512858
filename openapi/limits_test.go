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

// mutate sends one mutation from remote (with X-Forwarded-For when given
// and a user header when user is not empty).
func mutate(h http.Handler, remote, forwardedFor, user string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/stores/no-such-store/retry", nil)
	r.RemoteAddr = remote
	if forwardedFor != "" {
		r.Header.Set("X-Forwarded-For", forwardedFor)
	}
	if user != "" {
		r.Header.Set(openapi.UserHeader, user)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestRateLimitPerUser: an authenticated user spends their own tokens. The
// proxy in front of the API sends no X-Forwarded-For here, so every request
// has the proxy's address: the other users behind it still get through, and
// the limited user does not escape by coming from another address.
func TestRateLimitPerUser(t *testing.T) {
	s, api := newUnitTestAPI(t, options{cfg: openapi.Config{MutationsPerMinute: 10}})
	alice, bob := user(t, "alice"), user(t, "bob")
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
	if p.Limit != 10 || !strings.Contains(p.Detail, alice) {
		t.Errorf("limit %d, detail %q: want 10 and the user named", p.Limit, p.Detail)
	}
	// Reads are not limited.
	if rec := api.Get("/api/v1/stores", as(alice)); rec.Code != http.StatusOK {
		t.Errorf("read after the limit: %d", rec.Code)
	}
	// Bob, through the same proxy, has his own bucket.
	if w := mutate(s.Handler(), "127.0.0.1:1", "", bob); w.Code != http.StatusNotFound {
		t.Errorf("another user behind the same proxy: %d %s", w.Code, w.Body.String())
	}
	// Alice from another client address is still Alice.
	if w := mutate(s.Handler(), "127.0.0.1:1", "203.0.113.50", alice); w.Code != http.StatusTooManyRequests {
		t.Errorf("the limited user from another address: %d %s", w.Code, w.Body.String())
	}
}

// TestRateLimitAnonymousPerAddress: requests that do not authenticate spend
// their client address's tokens, an IPv6 client's whole /64, so hopping
// addresses within one's own network buys nothing; and a forged user header
// from an untrusted address spends the sender's tokens, not the user's.
func TestRateLimitAnonymousPerAddress(t *testing.T) {
	s := newUnitServer(t, options{cfg: openapi.Config{MutationsPerMinute: 3}})
	h := s.Handler()
	victim := user(t, "victim")
	spend := func(remote string, n int) {
		t.Helper()
		for i := range n {
			// Forged: the sender is not a trusted proxy.
			if w := mutate(h, remote, "", victim); w.Code != http.StatusUnauthorized {
				t.Fatalf("anonymous request %d from %s: %d %s", i+1, remote, w.Code, w.Body.String())
			}
		}
	}
	spend("[2001:db8:1:2::1]:1000", 3)
	for _, sameNetwork := range []string{"[2001:db8:1:2::1]:1001", "[2001:db8:1:2:ffff::7]:1000"} {
		w := mutate(h, sameNetwork, "", "")
		if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "this address") {
			t.Errorf("%s, in the limited /64: %d %s", sameNetwork, w.Code, w.Body.String())
		}
	}
	// Another /64 and other IPv4 addresses are other clients.
	spend("[2001:db8:1:3::1]:1000", 1)
	spend("198.51.100.7:1000", 3)
	if w := mutate(h, "198.51.100.8:1000", "", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("a neighbouring IPv4 address: %d %s", w.Code, w.Body.String())
	}
	// The victim's own bucket is untouched.
	if w := mutate(h, "127.0.0.1:1", "", victim); w.Code != http.StatusNotFound {
		t.Errorf("the user whose name was forged: %d %s", w.Code, w.Body.String())
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
