package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/charts"
	"github.com/storefleet/storefleet/clusters"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/manifests"
	"github.com/storefleet/storefleet/reconciler"
)

// The fleet benchmarks (reconciler, test/flux, test/scale) share what they
// measure against: the raw server-side-apply floor, bare Flux HelmReleases,
// and the process figures read from /proc.

// LocalPlatform is the platform of a built-in environment's values, as the
// operator builds it from --environment.
func LocalPlatform(t testing.TB, env string) reconciler.Platform {
	t.Helper()
	data, err := clusters.Values(env)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	return reconciler.Platform{Domain: vals["store"].(map[string]any)["domain"].(string), EnvironmentValues: vals}
}

// NewHelmSDK is a Helm SDK of the store chart against c, as the operator has.
func NewHelmSDK(t testing.TB, c *devcluster.Cluster) *reconciler.HelmSDK {
	t.Helper()
	httpClient, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(c.Config, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	helm, err := reconciler.NewHelmSDK(c.Config, mapper, charts.MedusaStore(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	return helm
}

// BenchStore is the store the fleet benchmarks create: Medusa, small plan.
func BenchStore(name string, mode v1alpha1.DeliveryMode) *v1alpha1.Store {
	s := &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "bench", Plan: v1alpha1.PlanSmall},
	}
	if mode != "" {
		s.Annotations = map[string]string{v1alpha1.DeliveryAnnotation: string(mode)}
	}
	return s
}

// CreateStores creates the stores prefix-0 … prefix-(n-1) at once (10
// requests in flight) and returns their names.
func CreateStores(t testing.TB, c *devcluster.Cluster, prefix string, n int, mode v1alpha1.DeliveryMode) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	inParallel(names, func(name string) {
		if err := c.Client.Create(context.Background(), BenchStore(name, mode)); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return names
}

// inParallel runs f for every name, 10 at a time: the concurrency the
// floor's applies and the benchmarks' creates share.
func inParallel(names []string, f func(string)) {
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for _, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(name)
		})
	}
	wg.Wait()
}

// WaitStoresReady polls until n stores named prefix-* are Ready.
func WaitStoresReady(t testing.TB, c *devcluster.Cluster, prefix string, n int, timeout time.Duration) {
	t.Helper()
	ready := func(o client.Object) bool { return o.(*v1alpha1.Store).Status.Phase == v1alpha1.PhaseReady }
	WaitWatched(t, c, &v1alpha1.StoreList{}, timeout, fmt.Sprintf("%d %s-* stores Ready", n, prefix), func(seen map[string]client.Object) bool {
		return countNamed(seen, prefix+"-", ready) == n
	})
}

// DeleteStores deletes every store named prefix-* and waits until they
// and their namespaces are gone, so the next measurement starts on an
// empty cluster.
func DeleteStores(t testing.TB, c *devcluster.Cluster, prefix string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	var l v1alpha1.StoreList
	if err := c.Client.List(ctx, &l); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range l.Items {
		if strings.HasPrefix(s.Name, prefix+"-") {
			names = append(names, s.Name)
		}
	}
	inParallel(names, func(name string) {
		_ = c.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	WaitWatched(t, c, &v1alpha1.StoreList{}, timeout, prefix+"-* stores deleted", func(seen map[string]client.Object) bool {
		return countNamed(seen, prefix+"-", nil) == 0
	})
	WaitNamespacesGone(t, c, v1alpha1.NamespacePrefix+prefix+"-", timeout)
}

// WaitNamespacesGone waits until no namespace's name starts with prefix.
func WaitNamespacesGone(t testing.TB, c *devcluster.Cluster, prefix string, timeout time.Duration) {
	t.Helper()
	WaitWatched(t, c, &corev1.NamespaceList{}, timeout, "namespaces "+prefix+"* gone", func(seen map[string]client.Object) bool {
		return countNamed(seen, prefix, nil) == 0
	})
}

// RawApplyFloor applies what the operator would create for n stores —
// namespace, isolation objects, credentials and the rendered chart — with
// plain server-side apply, 10 stores at a time, and waits until every
// workload is ready: the floor no operator can beat. It deletes the
// namespaces and waits until they are gone before returning the time to
// ready.
func RawApplyFloor(t testing.TB, c *devcluster.Cluster, prefix string, n int) time.Duration {
	t.Helper()
	ctx := context.Background()
	helm := NewHelmSDK(t, c)
	platform := LocalPlatform(t, "local")
	stores := make(map[string][]*unstructured.Unstructured, n)
	var namespaces []string
	for i := range n {
		s := BenchStore(fmt.Sprintf("%s-%d", prefix, i), "")
		ns := v1alpha1.NamespaceFor(s.Name)
		manifest, err := helm.Render(ns, s.Name, reconciler.ChartValues(s, platform))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifests.Decode([]byte(manifest))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			o.SetNamespace(ns)
		}
		stores[ns] = append(isolationObjects(ns), objs...)
		namespaces = append(namespaces, ns)
	}

	start := time.Now()
	inParallel(namespaces, func(ns string) {
		for _, o := range stores[ns] {
			if err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("bench-floor"), client.ForceOwnership); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for _, ns := range namespaces {
		Eventually(t, 10*time.Minute, "floor: "+ns+" workloads ready", func() (bool, error) { return workloadsReady(c, ns, stores[ns]) })
	}
	took := time.Since(start)
	for _, ns := range namespaces {
		_ = c.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	WaitNamespacesGone(t, c, v1alpha1.NamespacePrefix+prefix+"-", 10*time.Minute)
	return took
}

// isolationObjects are the namespace, quota, limits, default-deny policy
// and credentials the operator creates before the chart.
func isolationObjects(ns string) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{
		object("v1", "Namespace", "", ns, map[string]any{"metadata": map[string]any{"labels": map[string]any{"pod-security.kubernetes.io/enforce": "restricted"}}}),
		object("v1", "ResourceQuota", ns, "store-quota", map[string]any{"spec": map[string]any{"hard": map[string]any{"pods": "12", "requests.cpu": "1", "limits.cpu": "4", "requests.memory": "2Gi", "limits.memory": "6Gi"}}}),
		object("v1", "LimitRange", ns, "store-limits", map[string]any{"spec": map[string]any{"limits": []any{map[string]any{"type": "Container", "default": map[string]any{"cpu": "250m", "memory": "256Mi"}, "defaultRequest": map[string]any{"cpu": "50m", "memory": "64Mi"}}}}}),
		object("networking.k8s.io/v1", "NetworkPolicy", ns, "default-deny", map[string]any{"spec": map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress", "Egress"}}}),
		object("v1", "Secret", ns, "store-credentials", map[string]any{"stringData": map[string]any{"postgres-password": "p", "jwt-secret": "j", "cookie-secret": "c"}}),
	}
}

// workloadsReady says whether every Deployment and StatefulSet among the
// objects applied to ns is there and available.
func workloadsReady(c *devcluster.Cluster, ns string, applied []*unstructured.Unstructured) (bool, error) {
	ctx := context.Background()
	var deps appsv1.DeploymentList
	var sts appsv1.StatefulSetList
	if err := c.Client.List(ctx, &deps, client.InNamespace(ns)); err != nil {
		return false, err
	}
	if err := c.Client.List(ctx, &sts, client.InNamespace(ns)); err != nil {
		return false, err
	}
	want := map[string]int{}
	for _, o := range applied {
		want[o.GetKind()]++
	}
	if len(deps.Items) != want["Deployment"] || len(sts.Items) != want["StatefulSet"] {
		return false, nil
	}
	for _, d := range deps.Items {
		if d.Status.AvailableReplicas < *d.Spec.Replicas {
			return false, nil
		}
	}
	for _, s := range sts.Items {
		if s.Status.ReadyReplicas < *s.Spec.Replicas {
			return false, nil
		}
	}
	return true, nil
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

// BareHelmReleases creates n HelmReleases (prefix-0 …) of the same chart,
// source and values as storefleet's, each into a namespace of its own,
// waits until all are Ready — what Flux alone costs — and returns that
// time, after deleting them and waiting until they and their namespaces
// are gone.
func BareHelmReleases(t testing.TB, c *devcluster.Cluster, namespace, chartURL, prefix string, n int) time.Duration {
	t.Helper()
	ctx := context.Background()
	platform := LocalPlatform(t, "local")
	// The chart source the operator keeps, in case no Flux store made it yet.
	repo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "storefleet-charts", Namespace: namespace},
		Spec:       sourcev1.HelmRepositorySpec{URL: chartURL, Interval: metav1.Duration{Duration: 10 * time.Minute}},
	}
	if err := c.Client.Create(ctx, repo); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	start := time.Now()
	inParallel(names, func(name string) {
		ns := v1alpha1.NamespacePrefix + name
		if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Error(err)
			return
		}
		if err := c.Client.Create(ctx, bareHelmRelease(t, namespace, name, ns, platform)); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	hrReady := func(o client.Object) bool {
		c := apimeta.FindStatusCondition(o.(*helmv2.HelmRelease).Status.Conditions, meta.ReadyCondition)
		return c != nil && c.Status == metav1.ConditionTrue
	}
	WaitWatched(t, c, &helmv2.HelmReleaseList{}, 15*time.Minute, fmt.Sprintf("%d bare HelmReleases Ready", n), func(seen map[string]client.Object) bool {
		return countNamed(seen, prefix+"-", hrReady) == n
	}, client.InNamespace(namespace))
	took := time.Since(start)
	inParallel(names, func(name string) {
		_ = c.Client.Delete(ctx, &helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}})
	})
	WaitWatched(t, c, &helmv2.HelmReleaseList{}, 15*time.Minute, "bare HelmReleases uninstalled", func(seen map[string]client.Object) bool {
		return countNamed(seen, prefix+"-", nil) == 0
	}, client.InNamespace(namespace))
	inParallel(names, func(name string) {
		_ = c.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NamespacePrefix + name}})
	})
	WaitNamespacesGone(t, c, v1alpha1.NamespacePrefix+prefix+"-", 10*time.Minute)
	return took
}

// bareHelmRelease is storefleet's HelmRelease of a store, made by hand.
func bareHelmRelease(t testing.TB, namespace, name, target string, platform reconciler.Platform) *helmv2.HelmRelease {
	values, err := json.Marshal(reconciler.ChartValues(BenchStore(name, ""), platform))
	if err != nil {
		t.Fatal(err)
	}
	return &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: 10 * time.Minute}, ReleaseName: name, TargetNamespace: target, StorageNamespace: target,
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart: "medusa-store", SourceRef: helmv2.CrossNamespaceObjectReference{Kind: "HelmRepository", Name: "storefleet-charts", Namespace: namespace},
			}},
			Values: &apiextensionsv1.JSON{Raw: values},
			// The same release settings storefleet uses, so the anchor
			// differs only in who creates the HelmRelease.
			MaxHistory:     ptr.To(5),
			DriftDetection: &helmv2.DriftDetection{Mode: helmv2.DriftDetectionEnabled},
			Install:        &helmv2.Install{Strategy: &helmv2.InstallStrategy{Name: string(helmv2.ActionStrategyRetryOnFailure)}},
			Upgrade:        &helmv2.Upgrade{Strategy: &helmv2.UpgradeStrategy{Name: string(helmv2.ActionStrategyRetryOnFailure)}},
		},
	}
}

// ProcStatus reads a size field of /proc/<pid>/status ("VmRSS", "VmHWM")
// in bytes; 0 once the process is gone.
func ProcStatus(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// CPUSeconds is the user plus system CPU time a process used so far
// (/proc/<pid>/stat utime+stime, in clock ticks of 1/100 s on Linux).
func CPUSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: the fields start after its ')'.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}

// PeakRSS runs f, which returns the time it measured, and samples the
// summed resident memory of the processes pids names every 200 ms
// meanwhile; it returns f's time and the highest sum.
func PeakRSS(pids func() []int, f func() time.Duration) (time.Duration, int64) {
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var rss int64
			for _, pid := range pids() {
				rss += ProcStatus(pid, "VmRSS")
			}
			peak.Store(max(peak.Load(), rss))
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	took := f()
	close(stop)
	wg.Wait()
	return took, peak.Load()
}

// WaitHTTP waits up to 30 s for url to answer 200.
func WaitHTTP(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within 30 s", url)
}

// ScaleOperatorOnlyEnv, set to 1, makes `make bench-scale` measure only the
// operator's own figures in Helm SDK mode (S1's time, S3–S5, S7, with the
// operator's profiles): no raw-apply floor, bare HelmReleases or Flux mode,
// so no ratios. For profiling the operator in a third of the time.
const ScaleOperatorOnlyEnv = "STOREFLEET_SCALE_OPERATOR_ONLY"

// ScaleOperatorOnly reports whether ScaleOperatorOnlyEnv is set.
func ScaleOperatorOnly() bool { return os.Getenv(ScaleOperatorOnlyEnv) == "1" }

// ScaleDriftIntervalEnv sets the operator's drift interval in `make
// bench-scale` (a Go duration, default 20s: S4's idle window is three of
// them, a minute). At the operator's default (2m) S4 measures the idle CPU
// at that interval instead of projecting it, in a six-minute window.
const ScaleDriftIntervalEnv = "STOREFLEET_SCALE_DRIFT_INTERVAL"

// ScaleDriftInterval is the interval of ScaleDriftIntervalEnv.
func ScaleDriftInterval() (time.Duration, error) {
	v := os.Getenv(ScaleDriftIntervalEnv)
	if v == "" {
		return 20 * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 5*time.Second {
		return 0, fmt.Errorf("%s=%q: want a duration of at least 5s, e.g. 2m", ScaleDriftIntervalEnv, v)
	}
	return d, nil
}

// ScaleSizesEnv lists the fleet sizes `make bench-scale` measures, e.g.
// "100,250".
const ScaleSizesEnv = "STOREFLEET_SCALE_N"

// ScaleSizes are the fleet sizes of ScaleSizesEnv (default 100, 250, 500,
// 1000: issue #19's curve).
func ScaleSizes() ([]int, error) { return ParseScaleSizes(os.Getenv(ScaleSizesEnv)) }

// ParseScaleSizes parses comma-separated store counts, ascending and
// distinct.
func ParseScaleSizes(v string) ([]int, error) {
	if v == "" {
		v = "100,250,500,1000"
	}
	var sizes []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s=%q: want positive store counts separated by commas", ScaleSizesEnv, v)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	// A size measured twice would make a slope divide by zero.
	return slices.Compact(sizes), nil
}
