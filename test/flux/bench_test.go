package flux_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/clusters"
	"github.com/storefleet/storefleet/reconciler"
	"github.com/storefleet/storefleet/test/testenv"
)

// BenchmarkFluxDelivery: N stores created at once in Flux mode, in Helm SDK
// mode, and — the anchor — N bare Flux HelmReleases of the same chart and
// values created directly; time until all are Ready and the peak RSS of the
// operator plus helm-controller, same cluster, same run (`make bench`).
func BenchmarkFluxDelivery(b *testing.B) {
	requireFlux(b)
	for _, n := range []int{20, 100} {
		b.Run(fmt.Sprintf("stores=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				bare, bareRSS := measure(func() { bareHelmReleases(b, n, i) })
				flux, fluxRSS := measure(func() { storesThrough(b, n, i, v1alpha1.DeliveryFlux) })
				helm, helmRSS := measure(func() { storesThrough(b, n, i, v1alpha1.DeliveryHelm) })
				b.ReportMetric(flux.Seconds()/bare.Seconds(), "flux/bare")
				b.ReportMetric(helm.Seconds()/bare.Seconds(), "helm/bare")
				fmt.Printf("BENCH flux stores=%d: bare HelmReleases %.1fs (RSS %d MiB), storefleet Flux mode %.1fs = %.2fx (RSS %d MiB), storefleet Helm SDK mode %.1fs = %.2fx (RSS %d MiB); RSS = operator + helm-controller peak\n",
					n, bare.Seconds(), bareRSS>>20, flux.Seconds(), flux.Seconds()/bare.Seconds(), fluxRSS>>20, helm.Seconds(), helm.Seconds()/bare.Seconds(), helmRSS>>20)
			}
		})
	}
}

// measure times f and samples the RSS of the operator and helm-controller.
func measure(f func()) (time.Duration, int64) {
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			rss := rssOf(operator.Process.Pid) + rssOf(cluster.FluxControllerPID("helm-controller"))
			if rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	f()
	took := time.Since(start)
	close(stop)
	wg.Wait()
	return took, peak.Load()
}

func rssOf(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func storesThrough(b *testing.B, n, round int, mode v1alpha1.DeliveryMode) {
	ctx := context.Background()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-%d-%d", mode, round, i)
		s := &v1alpha1.Store{
			ObjectMeta: metav1.ObjectMeta{Name: names[i], Annotations: map[string]string{v1alpha1.DeliveryAnnotation: string(mode)}},
			Spec:       v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "bench"},
		}
		if err := cluster.Client.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	testenv.Eventually(b, 15*time.Minute, fmt.Sprintf("%d %s stores Ready", n, mode), func() (bool, error) {
		var l v1alpha1.StoreList
		if err := cluster.Client.List(ctx, &l); err != nil {
			return false, err
		}
		ready := 0
		for _, s := range l.Items {
			if strings.HasPrefix(s.Name, fmt.Sprintf("bench-%s-%d-", mode, round)) && s.Status.Phase == v1alpha1.PhaseReady {
				ready++
			}
		}
		return ready == n, nil
	})
	b.StopTimer()
	for _, name := range names {
		_ = cluster.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}})
	}
	testenv.Eventually(b, 15*time.Minute, "bench stores deleted", func() (bool, error) {
		var l v1alpha1.StoreList
		err := cluster.Client.List(ctx, &l)
		return err == nil && countPrefix(l.Items, "bench-") == 0, err
	})
	b.StartTimer()
}

func countPrefix(stores []v1alpha1.Store, prefix string) int {
	n := 0
	for _, s := range stores {
		if strings.HasPrefix(s.Name, prefix) {
			n++
		}
	}
	return n
}

// bareHelmReleases creates n HelmReleases of the same chart, source and
// values as storefleet's, each into a namespace of its own, and waits until
// all are Ready: what Flux alone costs.
func bareHelmReleases(b *testing.B, n, round int) {
	ctx := context.Background()
	data, err := clusters.Values("local")
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]any{}
	if err := yaml.Unmarshal(data, &env); err != nil {
		b.Fatal(err)
	}
	platform := reconciler.Platform{Domain: "localtest.me", EnvironmentValues: env}
	// The chart source the operator keeps, in case no Flux store made it yet.
	repo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "storefleet-charts", Namespace: platformNamespace},
		Spec:       sourcev1.HelmRepositorySpec{URL: chartURL, Interval: metav1.Duration{Duration: 10 * time.Minute}},
	}
	if err := cluster.Client.Create(ctx, repo); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	var names []string
	for i := range n {
		name := fmt.Sprintf("bare-%d-%d", round, i)
		names = append(names, name)
		ns := "store-" + name
		if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		values, _ := json.Marshal(reconciler.ChartValues(&v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "bench"}}, platform))
		hr := &helmv2.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: platformNamespace},
			Spec: helmv2.HelmReleaseSpec{
				Interval: metav1.Duration{Duration: 10 * time.Minute}, ReleaseName: name, TargetNamespace: ns, StorageNamespace: ns,
				Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
					Chart: "medusa-store", SourceRef: helmv2.CrossNamespaceObjectReference{Kind: "HelmRepository", Name: "storefleet-charts", Namespace: platformNamespace},
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
		if err := cluster.Client.Create(ctx, hr); err != nil {
			b.Fatal(err)
		}
	}
	testenv.Eventually(b, 15*time.Minute, fmt.Sprintf("%d bare HelmReleases Ready", n), func() (bool, error) {
		var l helmv2.HelmReleaseList
		if err := cluster.Client.List(ctx, &l, client.InNamespace(platformNamespace)); err != nil {
			return false, err
		}
		ready := 0
		for _, hr := range l.Items {
			c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
			if strings.HasPrefix(hr.Name, fmt.Sprintf("bare-%d-", round)) && c != nil && c.Status == metav1.ConditionTrue {
				ready++
			}
		}
		return ready == n, nil
	})
	b.StopTimer()
	for _, name := range names {
		_ = cluster.Client.Delete(ctx, &helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: platformNamespace}})
	}
	testenv.Eventually(b, 10*time.Minute, "bare HelmReleases uninstalled", func() (bool, error) {
		var l helmv2.HelmReleaseList
		err := cluster.Client.List(ctx, &l, client.InNamespace(platformNamespace))
		left := 0
		for _, hr := range l.Items {
			if strings.HasPrefix(hr.Name, "bare-") {
				left++
			}
		}
		return err == nil && left == 0, err
	})
	for _, name := range names {
		_ = cluster.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "store-" + name}})
	}
	b.StartTimer()
}
