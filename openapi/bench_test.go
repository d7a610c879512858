package openapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

const (
	benchStores = 1000
	benchUsers  = 200 // 5 stores each
)

// BenchmarkAPILoad: 1000 stores in the cache; GET /stores and GET
// /stores/{name} at a fixed 200 rps and POST at 20 rps on loopback, then the
// closed-loop throughput of GET /stores/{name} against a bare net/http
// handler that returns the same JSON from the same cache (the baseline).
// Run with `make bench`.
func BenchmarkAPILoad(b *testing.B) {
	clusterTest(b)
	seedStores(b)
	srv := httptest.NewServer(newServer(b, options{cfg: openapi.Config{MaxStoresPerUser: 5, MutationsPerMinute: -1}}).Handler())
	defer srv.Close()
	bare := httptest.NewServer(bareHandler())
	defer bare.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

	for i := 0; i < b.N; i++ {
		const seconds = 10
		var posts atomic.Int64
		var wg sync.WaitGroup
		var getLat, postLat []time.Duration
		wg.Go(func() {
			getLat = fixedRate(hc, 200, seconds, func(k int) *http.Request {
				u := fmt.Sprintf("bench-user-%d", rand.IntN(benchUsers))
				path := "/api/v1/stores"
				if k%2 == 1 {
					path += fmt.Sprintf("/bench-%d", rand.IntN(benchStores))
					u = benchOwner(path[len("/api/v1/stores/bench-"):])
				}
				r, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
				r.Header.Set(openapi.UserHeader, u)
				return r
			})
		})
		wg.Go(func() {
			postLat = fixedRate(hc, 20, seconds, func(int) *http.Request {
				n := posts.Add(1)
				body := fmt.Sprintf(`{"name":"bench-post-%d-%d","engine":"medusa"}`, i, n)
				r, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/stores", strings.NewReader(body))
				r.Header.Set(openapi.UserHeader, fmt.Sprintf("bench-poster-%d-%d", i, n))
				r.Header.Set("Content-Type", "application/json")
				return r
			})
		})
		wg.Wait()
		cleanupPosts(b)

		humaRPS := closedLoop(hc, srv.URL, 5*time.Second)
		bareRPS := closedLoop(hc, bare.URL, 5*time.Second)
		gp50, gp99 := percentile(getLat, 50), percentile(getLat, 99)
		pp50, pp99 := percentile(postLat, 50), percentile(postLat, 99)
		b.ReportMetric(float64(gp99.Microseconds())/1000, "ms-get-p99")
		b.ReportMetric(float64(pp99.Microseconds())/1000, "ms-post-p99")
		b.ReportMetric(humaRPS/bareRPS, "huma/bare")
		fmt.Printf("BENCH api: GET 200 rps x %ds: p50 %.2f ms, p99 %.2f ms (target <= 10 ms); POST 20 rps: p50 %.2f ms, p99 %.2f ms (target <= 50 ms)\n",
			seconds, ms(gp50), ms(gp99), ms(pp50), ms(pp99))
		fmt.Printf("BENCH api: GET /stores/{name} closed loop: Huma %.0f rps, bare net/http %.0f rps, ratio %.2fx (target >= 0.75x)\n",
			humaRPS, bareRPS, humaRPS/bareRPS)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func benchOwner(index string) string {
	var i int
	fmt.Sscan(index, &i)
	return fmt.Sprintf("bench-user-%d", i%benchUsers)
}

// seedStores creates the 1000 stores once (they survive between rounds).
func seedStores(b *testing.B) {
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	cl, err := client.New(cfg, client.Options{Scheme: devcluster.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				s := &v1alpha1.Store{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)},
					Spec:       v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: fmt.Sprintf("bench-user-%d", i%benchUsers)},
				}
				if err := cl.Create(context.Background(), s); err != nil && !strings.Contains(err.Error(), "already exists") {
					b.Error(err)
				}
			}
		})
	}
	for i := range benchStores {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	testenv.Eventually(b, time.Minute, "1000 stores in the cache", func() (bool, error) {
		l, err := stores.List(context.Background(), "")
		return len(l) >= benchStores, err
	})
}

func cleanupPosts(b *testing.B) {
	var l v1alpha1.StoreList
	if err := cluster.Client.List(context.Background(), &l); err != nil {
		b.Fatal(err)
	}
	for i := range l.Items {
		if strings.HasPrefix(l.Items[i].Name, "bench-post-") {
			_ = cluster.Client.Delete(context.Background(), &l.Items[i])
		}
	}
}

// bareHandler is the baseline: the same cache read and the same JSON as
// GET /stores/{name}, with net/http alone.
func bareHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/stores/{name}", func(w http.ResponseWriter, r *http.Request) {
		s, err := stores.Get(r.Context(), r.PathValue("name"))
		if err != nil || s == nil || s.Spec.Owner != r.Header.Get(openapi.UserHeader) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(openapi.StoreOf(s))
	})
	return mux
}

// fixedRate sends rps requests a second for the given seconds, open loop:
// each latency counts from the request's scheduled time, so a slow server
// cannot hide its queueing (no coordinated omission).
func fixedRate(hc *http.Client, rps, seconds int, req func(k int) *http.Request) []time.Duration {
	n := rps * seconds
	interval := time.Second / time.Duration(rps)
	lat := make([]time.Duration, n)
	start := time.Now()
	var wg sync.WaitGroup
	for k := range n {
		at := start.Add(time.Duration(k) * interval)
		time.Sleep(time.Until(at))
		wg.Go(func() {
			resp, err := hc.Do(req(k))
			if err != nil {
				lat[k] = time.Hour
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				lat[k] = time.Hour // a failure is the worst latency
				return
			}
			lat[k] = time.Since(at)
		})
	}
	wg.Wait()
	return lat
}

// closedLoop measures GET /stores/{name} throughput with 16 clients.
func closedLoop(hc *http.Client, base string, d time.Duration) float64 {
	var count atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for k := w; time.Now().Before(deadline); k += 16 {
				i := k % benchStores
				r, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/stores/bench-%d", base, i), nil)
				r.Header.Set(openapi.UserHeader, fmt.Sprintf("bench-user-%d", i%benchUsers))
				resp, err := hc.Do(r)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					count.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(count.Load()) / d.Seconds()
}

func percentile(lat []time.Duration, p int) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}
