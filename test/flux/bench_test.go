package flux_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/storefleet/storefleet/api/v1alpha1"
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
				bare, bareRSS := measure(func() time.Duration { return bareHelmReleases(b, n, i) })
				flux, fluxRSS := measure(func() time.Duration { return storesThrough(b, n, i, v1alpha1.DeliveryFlux) })
				helm, helmRSS := measure(func() time.Duration { return storesThrough(b, n, i, v1alpha1.DeliveryHelm) })
				b.ReportMetric(flux.Seconds()/bare.Seconds(), "flux/bare")
				b.ReportMetric(helm.Seconds()/bare.Seconds(), "helm/bare")
				fmt.Printf("BENCH flux stores=%d: bare HelmReleases %.1fs (RSS %d MiB), storefleet Flux mode %.1fs = %.2fx (RSS %d MiB), storefleet Helm SDK mode %.1fs = %.2fx (RSS %d MiB); RSS = operator + helm-controller peak\n",
					n, bare.Seconds(), bareRSS>>20, flux.Seconds(), flux.Seconds()/bare.Seconds(), fluxRSS>>20, helm.Seconds(), helm.Seconds()/bare.Seconds(), helmRSS>>20)
			}
		})
	}
}

// measure runs f, which returns the time it measured, and samples the RSS
// of the operator and helm-controller meanwhile.
func measure(f func() time.Duration) (time.Duration, int64) {
	return testenv.PeakRSS(func() []int { return []int{operator.Process.Pid, cluster.FluxControllerPID("helm-controller")} }, f)
}

// storesThrough creates n stores in mode at once and returns the time until
// all are Ready, after deleting them.
func storesThrough(b *testing.B, n, round int, mode v1alpha1.DeliveryMode) time.Duration {
	prefix := fmt.Sprintf("bench-%s-%d", mode, round)
	start := time.Now()
	testenv.CreateStores(b, cluster, prefix, n, mode)
	testenv.WaitStoresReady(b, cluster, prefix, n, 15*time.Minute)
	took := time.Since(start)
	testenv.DeleteStores(b, cluster, prefix, 15*time.Minute)
	return took
}

// bareHelmReleases: what Flux alone costs for n stores.
func bareHelmReleases(b *testing.B, n, round int) time.Duration {
	return testenv.BareHelmReleases(b, cluster, platformNamespace, chartURL, fmt.Sprintf("bare-%d", round), n)
}
