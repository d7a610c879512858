package reconciler_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/manifests"
	"github.com/storefleet/storefleet/reconciler"
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

// peakRSS reads the high-water mark of a process's resident memory.
func peakRSS(p *operatorProcess) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return p.peak
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			p.peak = kb << 10
		}
	}
	return p.peak
}

// rawApplyFloor applies what the operator would create for n stores —
// namespace, isolation objects, credentials and the rendered chart — with
// plain server-side apply, 10 stores at a time, and waits until every
// workload is ready.
func rawApplyFloor(b *testing.B, n, round int) time.Duration {
	ctx := context.Background()
	helm := newHelmSDK(b)
	platform := platformFor(b, "local")
	type storeObjs struct {
		ns   string
		objs []*unstructured.Unstructured
	}
	stores := make([]storeObjs, n)
	for i := range stores {
		s := newStore(fmt.Sprintf("floor-%d-%d-%d", n, round, i))
		ns := v1alpha1.NamespaceFor(s.Name)
		manifest, err := helm.Render(ns, s.Name, reconciler.ChartValues(s, platform))
		if err != nil {
			b.Fatal(err)
		}
		objs, err := manifests.Decode([]byte(manifest))
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range objs {
			o.SetNamespace(ns)
		}
		head := []*unstructured.Unstructured{
			object("v1", "Namespace", "", ns, map[string]any{"metadata": map[string]any{"labels": map[string]any{"pod-security.kubernetes.io/enforce": "restricted"}}}),
			object("v1", "ResourceQuota", ns, "store-quota", map[string]any{"spec": map[string]any{"hard": map[string]any{"pods": "12", "requests.cpu": "1", "limits.cpu": "4", "requests.memory": "2Gi", "limits.memory": "6Gi"}}}),
			object("v1", "LimitRange", ns, "store-limits", map[string]any{"spec": map[string]any{"limits": []any{map[string]any{"type": "Container", "default": map[string]any{"cpu": "250m", "memory": "256Mi"}, "defaultRequest": map[string]any{"cpu": "50m", "memory": "64Mi"}}}}}),
			object("networking.k8s.io/v1", "NetworkPolicy", ns, "default-deny", map[string]any{"spec": map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress", "Egress"}}}),
			object("v1", "Secret", ns, "store-credentials", map[string]any{"stringData": map[string]any{"postgres-password": "p", "jwt-secret": "j", "cookie-secret": "c"}}),
		}
		stores[i] = storeObjs{ns: ns, objs: append(head, objs...)}
	}

	start := time.Now()
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Add(1)
		sem <- struct{}{}
		go func(st storeObjs) {
			defer wg.Done()
			defer func() { <-sem }()
			for _, o := range st.objs {
				if err := cluster.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("bench-floor"), client.ForceOwnership); err != nil {
					b.Error(err)
					return
				}
			}
		}(st)
	}
	wg.Wait()
	for _, st := range stores {
		for {
			if workloadsReady(b, st.ns) {
				break
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("floor: %s not ready after 10 minutes", st.ns)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	took := time.Since(start)
	for _, st := range stores {
		_ = cluster.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: st.ns}})
	}
	return took
}

func workloadsReady(b *testing.B, ns string) bool {
	ctx := context.Background()
	var deps appsv1.DeploymentList
	var sts appsv1.StatefulSetList
	if err := cluster.Client.List(ctx, &deps, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	if err := cluster.Client.List(ctx, &sts, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	if len(deps.Items) != 3 || len(sts.Items) != 1 {
		return false
	}
	for _, d := range deps.Items {
		if d.Status.AvailableReplicas < *d.Spec.Replicas {
			return false
		}
	}
	return sts.Items[0].Status.ReadyReplicas >= 1
}

func object(apiVersion, kind, namespace, name string, rest map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: rest}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetName(name)
	if namespace != "" {
		u.SetNamespace(namespace)
	}
	return u
}
