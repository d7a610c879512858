package gitops_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/test/testenv"
)

// s6Trials is how many Git-intent stores S6 times at each size.
const s6Trials = 20

// BenchmarkFleetScaleGitIntent is S6 of the fleet-scale curve (make
// bench-scale, issue #19): an API POST through the Git intent (commit,
// push, webhook, the reader's sync) until the store is Ready, while the
// stores repo holds N other stores, for each N of STOREFLEET_SCALE_N,
// against the same with none in the repo (the baseline, first, in the same
// process). The other stores are suspended: the operator leaves them be,
// so what grows with N is the Git side — the writer's commits on a tree of
// N manifests, the reader parsing and comparing N stores on every sync.
// They stay in this package's cluster and repo, both removed when it ends.
func BenchmarkFleetScaleGitIntent(b *testing.B) {
	sizes, err := testenv.ScaleSizes()
	if err != nil {
		b.Fatal(err)
	}
	api, _ := newGitAPI(b, gitsync.WriterOptions{Remote: gitsync.Remote{URL: storesURL, Path: "stores"}})
	for b.Loop() {
		base := measure(b, api.URL, "s6-base", s6Trials, http.StatusAccepted)
		fmt.Printf("SCALE-S6 N=0 POST→Ready via git p50 %s p95 %s\n", pct(base, 50).Round(time.Millisecond), pct(base, 95).Round(time.Millisecond))
		have := 0
		for _, n := range sizes {
			fillStoresRepo(b, have, n)
			have = n
			took := measure(b, api.URL, fmt.Sprintf("s6-n%d", n), s6Trials, http.StatusAccepted)
			p95, bp95 := pct(took, 95), pct(base, 95)
			fmt.Println(testenv.ScaleLine(n, "S6", "Git intent: POST → Ready",
				fmt.Sprintf("p95 %.2f s", p95.Seconds()), fmt.Sprintf("p50 %.2f s; empty repo p95 %.2f s", pct(took, 50).Seconds(), bp95.Seconds()),
				fmt.Sprintf("%.2f× empty repo", p95.Seconds()/bp95.Seconds()), "p95 ≤ 5 s", testenv.Met(p95 <= 5*time.Second)))
		}
	}
}

// fillStoresRepo commits suspended stores fleet-<from> … fleet-<to-1> in one
// commit and waits until the reader has made every one of them a Store.
func fillStoresRepo(b *testing.B, from, to int) {
	b.Helper()
	files := map[string][]byte{}
	for i := from; i < to; i++ {
		name := fmt.Sprintf("fleet-%04d", i)
		files["stores/"+name+".yaml"] = []byte(strings.TrimSuffix(string(manifest(name, "fleet", "medusa")), "\n") + "\n  suspend: true\n")
	}
	if _, err := git.Commit("stores", "main", fmt.Sprintf("Add %d suspended stores", to-from), files); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	testenv.Eventually(b, 5*time.Minute+time.Duration(to)*100*time.Millisecond, fmt.Sprintf("%d fleet stores synced from the repo", to), func() (bool, error) {
		var l metav1.PartialObjectMetadataList
		l.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("StoreList"))
		if err := cluster.Client.List(context.Background(), &l); err != nil {
			return false, err
		}
		synced := 0
		for _, s := range l.Items {
			if strings.HasPrefix(s.Name, "fleet-") {
				synced++
			}
		}
		return synced >= to, fmt.Errorf("%d of %d", synced, to)
	})
	fmt.Printf("SCALE-S6 N=%d the reader synced %d new stores in %s\n", to, to-from, time.Since(start).Round(time.Millisecond))
}
