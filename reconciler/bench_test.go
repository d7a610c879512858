package reconciler_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/test/testenv"
)

// BenchmarkProvisionStores creates N stores at once and measures the time
// until all are Ready, against the floor: the same rendered objects of N
// stores applied with raw server-side apply (same concurrency) and waited for
// until their workloads are ready. Run with `make bench` (-benchtime=1x).
func BenchmarkProvisionStores(b *testing.B) {
	suite(b)
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("stores=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				floor := rawApplyFloor(b, n, i)
				op, took := operatorProvision(b, n, i)
				b.ReportMetric(took.Seconds(), "s-operator")
				b.ReportMetric(floor.Seconds(), "s-raw-apply")
				b.ReportMetric(took.Seconds()/floor.Seconds(), "ratio")
				b.ReportMetric(float64(peakRSS(op))/(1<<20), "MiB-peak-RSS")
				fmt.Printf("BENCH stores=%d: operator %.1fs, raw server-side apply %.1fs, ratio %.2fx, operator peak RSS %d MiB\n",
					n, took.Seconds(), floor.Seconds(), took.Seconds()/floor.Seconds(), peakRSS(op)>>20)
			}
		})
	}
}

// operatorProvision runs a fresh operator with production defaults (but 10
// workers) and creates n stores at once; it returns when all are Ready.
func operatorProvision(b *testing.B, n, round int) (*operatorProcess, time.Duration) {
	ctx := context.Background()
	operator.stop()
	op, err := startOperator(fmt.Sprintf("bench-%d-%d", n, round),
		"--workers", "10", "--drift-interval", "120s", "--pod-start-timeout", "5m")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		op.stop()
		if operator, err = startOperator("primary"); err != nil {
			b.Fatal(err)
		}
	}()
	names := make([]string, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range names {
		names[i] = fmt.Sprintf("bench-%d-%d-%d", n, round, i)
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			if err := cluster.Client.Create(ctx, newStore(name)); err != nil {
				b.Error(err)
			}
		}(names[i])
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list v1alpha1.StoreList
		if err := cluster.Client.List(ctx, &list); err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, s := range list.Items {
			if strings.HasPrefix(s.Name, fmt.Sprintf("bench-%d-%d-", n, round)) && s.Status.Phase == v1alpha1.PhaseReady {
				ready++
			}
		}
		if ready == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d/%d stores Ready after 10 minutes", ready, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	rss := peakRSS(op)
	for _, name := range names {
		_ = cluster.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}})
	}
	b.Logf("operator peak RSS %d MiB", rss>>20)
	return op, took
}

// peakRSS reads the high-water mark of a process's resident memory, kept
// for after it exits.
func peakRSS(p *operatorProcess) int64 {
	if hwm := testenv.ProcStatus(p.cmd.Process.Pid, "VmHWM"); hwm > 0 {
		p.peak = hwm
	}
	return p.peak
}

// rawApplyFloor is the raw server-side-apply floor of n stores.
func rawApplyFloor(b *testing.B, n, round int) time.Duration {
	return testenv.RawApplyFloor(b, cluster, fmt.Sprintf("floor-%d-%d", n, round), n)
}
