package scale_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/reconciler"
	"github.com/storefleet/storefleet/test/testenv"
)

// driftInterval is the operator's periodic re-check in the benchmark
// (testenv.ScaleDriftIntervalEnv): S4 watches three of them.
var driftInterval time.Duration

// healTrials is how many Deployment deletions S5 times.
const healTrials = 20

// BenchmarkFleetScale measures, for each fleet size N of STOREFLEET_SCALE_N
// (default 100,250,500,1000), the figures of issue #19 against baselines
// measured in the same process, and prints them as lines starting with
// SCALE. Every store, HelmRelease and namespace it creates is gone when a
// size ends.
func BenchmarkFleetScale(b *testing.B) {
	sizes, err := testenv.ScaleSizes()
	if err != nil {
		b.Fatal(err)
	}
	if driftInterval, err = testenv.ScaleDriftInterval(); err != nil {
		b.Fatal(err)
	}
	f := start(b)
	time.Sleep(5 * time.Second) // the operator's informers settle
	idle := f.memory(b)
	var table []row
	for _, n := range sizes {
		b.Run(fmt.Sprintf("stores=%d", n), func(b *testing.B) {
			for range b.N {
				rows, mem := f.measure(b, n, idle)
				table = append(table, rows...)
				idle = mem
			}
		})
	}
	printTable(table)
}

// waitFor bounds every wait of a size by the size: 5 minutes plus 2 s a
// store.
func waitFor(n int) time.Duration { return 5*time.Minute + time.Duration(n)*2*time.Second }

// measure runs S1–S7 at size n; prev is the memory of the previous size
// (or of the idle operator), the other end of the S3 slope.
func (f *fleet) measure(b *testing.B, n int, prev memory) ([]row, memory) {
	c := f.cluster
	quick := testenv.ScaleOperatorOnly()
	var floor, bare time.Duration
	if !quick {
		floor = testenv.RawApplyFloor(b, c, fmt.Sprintf("floor%d", n), n)
		// The API server's requests of the bare HelmReleases include
		// their deletion, which BareHelmReleases waits for.
		f.accounted(b, "bare", n, func() time.Duration {
			bare = testenv.BareHelmReleases(b, c, platformNamespace, f.chartURL, fmt.Sprintf("bare%d", n), n)
			return bare
		})
	}

	// S1: Helm SDK mode, with the API server's and the operator's request
	// counts and the operator's CPU over the run.
	helmPrefix := fmt.Sprintf("helm%d", n)
	var helm time.Duration
	var peak int64
	f.accounted(b, "S1", n, func() time.Duration {
		helm, peak = f.timed(func() {
			testenv.CreateStores(b, c, helmPrefix, n, v1alpha1.DeliveryHelm)
			testenv.WaitStoresReady(b, c, helmPrefix, n, waitFor(n))
		})
		return helm
	})
	fmt.Printf("SCALE-S1 N=%d operator peak RSS %d MiB\n", n, peak>>20)

	// S3: memory with n Ready stores, once the fleet is quiet.
	time.Sleep(10 * time.Second)
	mem := f.memory(b)
	rows := []row{{n, "S1", "Helm SDK: N stores → Ready", fmt.Sprintf("%.1f s", helm.Seconds()), "no baselines (" + testenv.ScaleOperatorOnlyEnv + ")", "", "", ""}}
	if !quick {
		rows = []row{
			ratioRow(n, "S1", "Helm SDK: N stores → Ready", helm, "bare HelmReleases", bare, 0.5),
			ratioRow(n, "S1", "Helm SDK vs raw apply", helm, "raw SSA floor", floor, 1.3),
		}
	}
	rows = append(rows, mem.slopeRows(n, prev)...)
	rows = append(rows, f.idle(b, n, helmPrefix)...)
	rows = append(rows, f.heal(b, n, helmPrefix+"-0")...)
	rows = append(rows, f.sizes(b, n, helmPrefix+"-0")...)
	testenv.DeleteStores(b, c, helmPrefix, waitFor(n))
	if quick {
		printTable(rows)
		return rows, mem
	}

	// S2: Flux mode against the same bare HelmReleases.
	fluxPrefix := fmt.Sprintf("flux%d", n)
	var flux time.Duration
	f.accounted(b, "S2", n, func() time.Duration {
		flux, _ = f.timed(func() {
			testenv.CreateStores(b, c, fluxPrefix, n, v1alpha1.DeliveryFlux)
			testenv.WaitStoresReady(b, c, fluxPrefix, n, waitFor(n))
		})
		return flux
	})
	testenv.DeleteStores(b, c, fluxPrefix, waitFor(n))
	f.waitHelmReleasesGone(b, n)
	rows = append(rows, ratioRow(n, "S2", "Flux mode: N stores → Ready", flux, "bare HelmReleases", bare, 1.15))
	printTable(rows)
	return rows, mem
}

func (f *fleet) pid() int { return f.operator.Cmd.Process.Pid }

// accounted runs one timed part of a size and prints where its requests
// went: the API server's by verb and resource (every client), the
// operator's by method, its CPU, reconciles and Helm actions.
func (f *fleet) accounted(b *testing.B, part string, n int, fn func() time.Duration) {
	api0, op0, cpu0 := f.apiRequests(b), f.opMetrics(b), testenv.CPUSeconds(f.pid())
	took := fn()
	api1, op1, cpu1 := f.apiRequests(b), f.opMetrics(b), testenv.CPUSeconds(f.pid())
	fmt.Printf("SCALE-%s N=%d API server requests (verb resource): %s\n", part, n, testenv.Top(testenv.Delta(api0, api1), 14))
	fmt.Printf("SCALE-%s N=%d operator requests (method): %s\n", part, n, testenv.Top(testenv.Delta(op0.By("rest_client_requests_total", "method"), op1.By("rest_client_requests_total", "method")), 8))
	fmt.Printf("SCALE-%s N=%d operator CPU %.1f s over %.1f s (%.2f core), reconciles %s, reconcile time %.1f s, Helm actions %s\n",
		part, n, cpu1-cpu0, took.Seconds(), (cpu1-cpu0)/took.Seconds(),
		testenv.Top(testenv.Delta(op0.By("controller_runtime_reconcile_total", "controller", "result"), op1.By("controller_runtime_reconcile_total", "controller", "result")), 6),
		op1.Sum("controller_runtime_reconcile_time_seconds_sum", nil)-op0.Sum("controller_runtime_reconcile_time_seconds_sum", nil),
		testenv.Top(testenv.Delta(op0.By("storefleet_helm_actions_total", "action"), op1.By("storefleet_helm_actions_total", "action")), 6))
}

// timed runs fn and returns how long it took and the operator's peak RSS
// sampled meanwhile.
func (f *fleet) timed(fn func()) (time.Duration, int64) {
	return testenv.PeakRSS(func() []int { return []int{f.pid()} }, func() time.Duration {
		start := time.Now()
		fn()
		return time.Since(start)
	})
}

func (f *fleet) opMetrics(b *testing.B) testenv.Samples {
	b.Helper()
	s, err := testenv.ScrapeURL(f.metricsURL)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// apiRequests is the API server's request count by verb and resource.
func (f *fleet) apiRequests(b *testing.B) map[string]float64 {
	b.Helper()
	s, err := testenv.ScrapeAPIServer(f.cluster)
	if err != nil {
		b.Fatal(err)
	}
	return s.By("apiserver_request_total", "verb", "resource")
}

// memory is the operator's footprint at one fleet size.
type memory struct {
	stores                    int
	rss, heapInuse, heapAlloc float64
	objects                   int
}

// memory takes the heap profile first: it collects garbage, so the heap in
// use is what the operator keeps (the live objects), not wherever the
// collector's cycle happened to be; RSS is what the process holds.
func (f *fleet) memory(b *testing.B) memory {
	b.Helper()
	n := f.storeCount(b)
	f.heapProfile(b, n)
	m := f.opMetrics(b)
	return memory{
		stores:    n,
		rss:       float64(testenv.ProcStatus(f.pid(), "VmRSS")),
		heapInuse: m.Sum("go_memstats_heap_inuse_bytes", nil),
		heapAlloc: m.Sum("go_memstats_heap_alloc_bytes", nil),
		objects:   f.informerObjects(b),
	}
}

// heapProfile saves the operator's heap profile with n Ready stores to
// build/scale/heap-<n>.pb.gz and prints where the memory in use is, by
// function (`go tool pprof -top`): the evidence behind S3.
func (f *fleet) heapProfile(b *testing.B, n int) {
	p := f.profile(b, fmt.Sprintf("heap-%d", n), "/debug/pprof/heap?gc=1", "-inuse_space")
	fmt.Printf("SCALE-S3 N=%d heap profile %s, in use by function:\n%s", n, p.path, p.top)
}

// savedProfile is an operator profile saved under build/scale and its
// `go tool pprof -top`.
type savedProfile struct{ path, top string }

// profile fetches one of the operator's pprof profiles (it runs with
// --pprof) to build/scale/<name>.pb.gz.
func (f *fleet) profile(b *testing.B, name, query, order string) savedProfile {
	b.Helper()
	resp, err := http.Get(strings.TrimSuffix(f.metricsURL, "/metrics") + query)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("the operator's profile %s: %s (is --pprof on?)", query, resp.Status)
	}
	dir := filepath.Join("..", "..", "build", "scale")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, name+".pb.gz")
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	_, err = io.Copy(out, resp.Body)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", order, "-nodecount=25", path).CombinedOutput()
	if err != nil {
		b.Fatalf("go tool pprof %s: %v\n%s", path, err, top)
	}
	return savedProfile{path, string(top)}
}

func (f *fleet) storeCount(b *testing.B) int {
	var l metav1.PartialObjectMetadataList
	l.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("StoreList"))
	if err := f.cluster.Client.List(context.Background(), &l); err != nil {
		b.Fatal(err)
	}
	return len(l.Items)
}

// informerObjects counts the objects the operator's cache holds: the
// store-labelled managed objects, every PersistentVolume and every Store.
func (f *fleet) informerObjects(b *testing.B) int {
	ctx := context.Background()
	total := f.storeCount(b)
	for _, gvk := range append(reconciler.ManagedKinds(), schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolume"}) {
		var l metav1.PartialObjectMetadataList
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		var opts []client.ListOption
		if gvk.Kind != "PersistentVolume" {
			opts = append(opts, client.HasLabels{v1alpha1.StoreLabel})
		}
		if err := f.cluster.Client.List(ctx, &l, opts...); err != nil {
			b.Fatal(err)
		}
		total += len(l.Items)
	}
	return total
}

// slopeRows: S3, the growth per store between prev and m.
func (m memory) slopeRows(n int, prev memory) []row {
	d := float64(m.stores - prev.stores)
	base := fmt.Sprintf("at %d stores", prev.stores)
	mib := func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
	slope := func(a, b float64) float64 { return (a - b) / (1 << 20) / d }
	return []row{
		{n, "S3", "operator RSS", mib(m.rss), base + " " + mib(prev.rss), fmt.Sprintf("%.3f MiB/store", slope(m.rss, prev.rss)), "≤ 0.08", met(slope(m.rss, prev.rss) <= 0.08)},
		{n, "S3", "Go heap in use after GC", mib(m.heapInuse), base + " " + mib(prev.heapInuse), fmt.Sprintf("%.3f MiB/store", slope(m.heapInuse, prev.heapInuse)), "≤ 0.08", met(slope(m.heapInuse, prev.heapInuse) <= 0.08)},
		// The objects the heap holds right after the collection; the heap
		// in use also counts the free slots of every span that holds one.
		{n, "S3", "Go heap live after GC", mib(m.heapAlloc), base + " " + mib(prev.heapAlloc), fmt.Sprintf("%.3f MiB/store", slope(m.heapAlloc, prev.heapAlloc)), "", ""},
		{n, "S3", "informer objects", strconv.Itoa(m.objects), fmt.Sprintf("%s %d", base, prev.objects), fmt.Sprintf("%.1f /store", float64(m.objects-prev.objects)/d), "", ""},
	}
}

// idle is S4: the Ready fleet left alone for three drift intervals. The
// operator's own client metrics attribute its requests exactly; the API
// server's write count covers every client (controller-manager, kwok,
// Flux, leases) and is shown for scale.
func (f *fleet) idle(b *testing.B, n int, prefix string) []row {
	window := 3 * driftInterval
	op0, api0, cpu0 := f.opMetrics(b), f.apiRequests(b), testenv.CPUSeconds(f.pid())
	// The operator's CPU profile over the same window: where the idle
	// CPU goes.
	profile := f.profile(b, fmt.Sprintf("cpu-idle-%d", n), fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(window.Seconds())), "-cum")
	// The API server's count first: a check reads its Store before it
	// counts itself, so a read the window's end catches has its check
	// counted too (the other order once showed 760 reads for 759 checks).
	api1 := f.apiRequests(b)
	op1, cpu1 := f.opMetrics(b), testenv.CPUSeconds(f.pid())
	fmt.Printf("SCALE-S4 N=%d operator CPU profile %s, by function (cumulative):\n%s", n, profile.path, profile.top)
	byMethod := testenv.Delta(op0.By("rest_client_requests_total", "method"), op1.By("rest_client_requests_total", "method"))
	writes := byMethod["POST"] + byMethod["PUT"] + byMethod["PATCH"] + byMethod["DELETE"]
	core := (cpu1 - cpu0) / window.Seconds()
	requests := testenv.Delta(api0, api1)
	// Only the operator reads Stores while the fleet idles, so the API
	// server's count of them is the operator's reads for its stores; its
	// other GETs (not a store's) are shown beside them.
	storeReads := requests["GET stores"]
	// Per check: each store is checked once per interval, and a window of
	// three intervals catches some stores a fourth time at its edge.
	checks := op1.Sum("storefleet_drift_checks_total", nil) - op0.Sum("storefleet_drift_checks_total", nil)
	perCheck := storeReads / max(checks, 1)
	perCheckCPU := (cpu1 - cpu0) / max(checks, 1)
	// The same checks at the operator's default interval.
	atDefault := perCheckCPU * float64(n) / reconciler.DefaultOptions().DriftInterval.Seconds()
	apiDelta := writesOf(requests)
	total := 0.0
	for _, v := range apiDelta {
		total += v
	}
	fmt.Printf("SCALE-S4 N=%d operator requests in %s idle: %s; API server writes, all clients: %s\n", n, window, testenv.Top(byMethod, 6), testenv.Top(apiDelta, 8))
	rows := []row{
		{n, "S4", "operator writes, 3 intervals", fmt.Sprintf("%.0f", writes), fmt.Sprintf("API server writes (all clients) %.0f", total), "", "0", met(writes == 0)},
		{n, "S4", "operator live reads", fmt.Sprintf("%.0f", byMethod["GET"]), fmt.Sprintf("%.0f of Stores, %.0f other; %.0f checks", storeReads, byMethod["GET"]-storeReads, checks), fmt.Sprintf("%.2f /store/check", perCheck), "≤ 1", met(perCheck <= 1)},
		{n, "S4", "operator CPU idle", fmt.Sprintf("%.3f core", core), fmt.Sprintf("%s interval, %.1f ms a check", driftInterval, perCheckCPU*1000), "", "≤ 0.05", met(core <= 0.05)},
	}
	if driftInterval != reconciler.DefaultOptions().DriftInterval {
		rows = append(rows, row{n, "S4", "  at the default interval", fmt.Sprintf("%.3f core", atDefault), fmt.Sprintf("projected: %d checks per %s", n, reconciler.DefaultOptions().DriftInterval), "", "≤ 0.05", met(atDefault <= 0.05)})
	}
	return rows
}

// writesOf keeps the writes of request counts by verb and resource.
func writesOf(requests map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range requests {
		verb, _, _ := strings.Cut(k, " ")
		switch verb {
		case "POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY":
			out[k] = v
		}
	}
	return out
}

// heal is S5: a managed Deployment of one store deleted while the fleet
// exists, timed until it is back and available, healTrials times.
func (f *fleet) heal(b *testing.B, n int, store string) []row {
	ctx := context.Background()
	ns := v1alpha1.NamespaceFor(store)
	var times []time.Duration
	for range healTrials {
		var d appsv1.Deployment
		var s v1alpha1.Store
		key := client.ObjectKey{Namespace: ns, Name: "storefront"}
		testenv.Eventually(b, 2*time.Minute, store+" Ready, storefront available before the trial", func() (bool, error) {
			if err := f.cluster.Client.Get(ctx, client.ObjectKey{Name: store}, &s); err != nil || s.Status.Phase != v1alpha1.PhaseReady {
				return false, err
			}
			err := f.cluster.Client.Get(ctx, key, &d)
			return err == nil && d.Status.AvailableReplicas >= 1 && d.DeletionTimestamp == nil, err
		})
		old := d.UID
		start := time.Now()
		if err := f.cluster.Client.Delete(ctx, &d); err != nil {
			b.Fatal(err)
		}
		for {
			var now appsv1.Deployment
			err := f.cluster.Client.Get(ctx, key, &now)
			if err == nil && now.UID != old && now.Status.AvailableReplicas >= 1 {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("storefront of %s not healed 2 minutes after its deletion", store)
			}
			time.Sleep(20 * time.Millisecond)
		}
		times = append(times, time.Since(start))
		time.Sleep(time.Second)
	}
	slices.Sort(times)
	p50, p95 := times[len(times)/2], times[(len(times)*95+99)/100-1]
	return []row{{n, "S5", "Deployment deleted → healed", fmt.Sprintf("p95 %.2f s", p95.Seconds()), fmt.Sprintf("p50 %.2f s, max %.2f s", p50.Seconds(), times[len(times)-1].Seconds()), "", "p95 ≤ 2 s", met(p95 <= 2*time.Second)}}
}

// sizes is S7: the Store object after S5's heals filled its activity
// ring, as the API server serves it (managed fields included), and the
// Helm revisions its namespace keeps.
func (f *fleet) sizes(b *testing.B, n int, store string) []row {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(f.cluster.Config)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/apis", v1alpha1.GroupVersion.Group, v1alpha1.GroupVersion.Version, "stores", store).DoRaw(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var s v1alpha1.Store
	if err := f.cluster.Client.Get(ctx, client.ObjectKey{Name: store}, &s); err != nil {
		b.Fatal(err)
	}
	var secrets corev1.SecretList
	if err := f.cluster.Client.List(ctx, &secrets, client.InNamespace(v1alpha1.NamespaceFor(store)), client.MatchingLabels{"owner": "helm"}); err != nil {
		b.Fatal(err)
	}
	return []row{
		{n, "S7", "Store object JSON", fmt.Sprintf("%.1f KiB", float64(len(raw))/1024), fmt.Sprintf("activity %d/%d, inventory %d", len(s.Status.ActivityLog), v1alpha1.ActivityLogSize, len(s.Status.Inventory)), "", "≤ 16 KiB", met(len(raw) <= 16<<10)},
		{n, "S7", "Helm history", fmt.Sprintf("%d revisions", len(secrets.Items)), "after the heals", "", "≤ 5", met(len(secrets.Items) <= 5)},
	}
}

// waitHelmReleasesGone waits until the Flux stores' HelmReleases are gone.
func (f *fleet) waitHelmReleasesGone(b *testing.B, n int) {
	testenv.WaitWatched(b, f.cluster, &helmv2.HelmReleaseList{}, waitFor(n), "the Flux stores' HelmReleases gone", func(seen map[string]client.Object) bool {
		return len(seen) == 0
	}, client.InNamespace(platformNamespace))
}

// row is one line of the SCALE table.
type row struct {
	n                                      int
	id, what, value, baseline, ratio, goal string
	met                                    string
}

func ratioRow(n int, id, what string, took time.Duration, baseName string, base time.Duration, goal float64) row {
	r := took.Seconds() / base.Seconds()
	return row{n, id, what, fmt.Sprintf("%.1f s", took.Seconds()), fmt.Sprintf("%s %.1f s", baseName, base.Seconds()), fmt.Sprintf("%.2f×", r), "≤ " + strconv.FormatFloat(goal, 'f', -1, 64) + "×", met(r <= goal)}
}

var met = testenv.Met

func printTable(rows []row) {
	fmt.Println(testenv.ScaleHeader())
	for _, r := range rows {
		fmt.Println(testenv.ScaleLine(r.n, r.id, r.what, r.value, r.baseline, r.ratio, r.goal, r.met))
	}
}
