package gitops_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

// BenchmarkGitIntentToReady measures the time from an API POST to the store
// being Ready through the same API, over 20 stores one after another: with
// the Git intent (commit, push, webhook, reader sync) against the baseline
// of the Kubernetes intent (the Store written directly), in one process on
// one cluster. Target: Git p95 ≤ 5 s.
func BenchmarkGitIntentToReady(b *testing.B) {
	const n = 20
	gitAPI, _ := newGitAPI(b, gitsync.WriterOptions{Remote: gitsync.Remote{URL: storesURL, Path: "stores"}})
	trusted, _ := openapi.ParseTrustedProxies("127.0.0.1/32")
	kubeAPI := httptest.NewServer(openapi.New(openapi.Config{
		Auth: openapi.HeaderAuth{Trusted: trusted}, Trusted: trusted, MaxStoresPerUser: 100,
	}, openapi.Deps{
		Stores: stores, Intents: openapi.ClusterIntents{Client: cluster.Client},
		Lock:   &openapi.LeaseLock{Client: cluster.Client, Namespace: namespace, Holder: "bench"},
		Client: cluster.Client, Ready: func(context.Context) error { return nil },
	}).Handler())
	defer kubeAPI.Close()

	for b.Loop() {
		base := measure(b, kubeAPI.URL, "kube", n, http.StatusCreated)
		viaGit := measure(b, gitAPI.URL, "git", n, http.StatusAccepted)
		b.ReportMetric(pct(viaGit, 50).Seconds(), "git-p50-s")
		b.ReportMetric(pct(viaGit, 95).Seconds(), "git-p95-s")
		b.ReportMetric(pct(base, 50).Seconds(), "kube-p50-s")
		b.ReportMetric(pct(base, 95).Seconds(), "kube-p95-s")
		b.ReportMetric(float64(pct(viaGit, 95))/float64(pct(base, 95)), "git/kube-p95")
		fmt.Printf("POST→Ready over %d stores: git intent p50 %s p95 %s; kubernetes intent (baseline) p50 %s p95 %s; p95 ratio %.2f×\n",
			n, pct(viaGit, 50).Round(time.Millisecond), pct(viaGit, 95).Round(time.Millisecond),
			pct(base, 50).Round(time.Millisecond), pct(base, 95).Round(time.Millisecond), float64(pct(viaGit, 95))/float64(pct(base, 95)))
	}
}

func measure(b *testing.B, api, prefix string, n, wantStatus int) []time.Duration {
	var out []time.Duration
	for i := range n {
		name := fmt.Sprintf("bench-%s-%d", prefix, i)
		start := time.Now()
		if status, body := call(b, http.MethodPost, api+"/api/v1/stores", "bench", `{"name":"`+name+`","engine":"medusa"}`, nil); status != wantStatus {
			b.Fatalf("create %s: %d %s", name, status, body)
		}
		var got openapi.Store
		testenv.Eventually(b, 2*time.Minute, name+" Ready", func() (bool, error) {
			call(b, http.MethodGet, api+"/api/v1/stores/"+name, "bench", "", &got)
			return got.Phase == "Ready", nil
		})
		out = append(out, time.Since(start))
		call(b, http.MethodDelete, api+"/api/v1/stores/"+name, "bench", "", nil)
	}
	return out
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*p+99)/100-1]
}
