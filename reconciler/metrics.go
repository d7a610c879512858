package reconciler

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Operator metrics (storefleet_stores{phase} is phaseCollector), registered
// with controller-runtime's registry so they are served on the manager's
// /metrics beside its own.
var (
	storesCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "storefleet_stores_created_total",
		Help: "Stores the operator started provisioning.",
	})
	provisioningFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "storefleet_provisioning_failures_total",
		Help: "Stores that reached the Failed phase.",
	})
	provisioningDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "storefleet_provisioning_duration_seconds",
		Help:    "Time from a store's creation to its first Ready.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	driftCorrections = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "storefleet_drift_corrections_total",
		Help: "Drifted stores healed.",
	})
	driftChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "storefleet_drift_checks_total",
		Help: "Comparisons of a deployed store's objects with its release, by result (clean, drifted). A clean check is not written to the Store.",
	}, []string{"result"})
	driftCompared = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "storefleet_drift_objects_compared_total",
		Help: "Release objects compared field by field with the live ones by drift checks. An object not written since it was last found matching (the same resourceVersion) is not compared again.",
	})
	helmActions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "storefleet_helm_actions_total",
		Help: "Release-changing Helm SDK actions, by action.",
	}, []string{"action"})
)

func init() {
	metrics.Registry.MustRegister(storesCreated, provisioningFailures, provisioningDuration, driftCorrections, driftChecks, driftCompared, helmActions)
}

// phaseCollector reports storefleet_stores{phase} from the cache at scrape time.
type phaseCollector struct {
	reader client.Reader
}

var storesDesc = prometheus.NewDesc("storefleet_stores", "Stores by phase.", []string{"phase"}, nil)

func (c *phaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- storesDesc }

func (c *phaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list v1alpha1.StoreList
	if err := c.reader.List(ctx, &list); err != nil {
		return
	}
	counts := map[v1alpha1.Phase]int{}
	for _, p := range []v1alpha1.Phase{v1alpha1.PhasePending, v1alpha1.PhaseProvisioning, v1alpha1.PhaseReady, v1alpha1.PhaseFailed, v1alpha1.PhaseDeleting, v1alpha1.PhaseComingSoon} {
		counts[p] = 0
	}
	for _, s := range list.Items {
		p := s.Status.Phase
		if p == "" {
			p = v1alpha1.PhasePending
		}
		counts[p]++
	}
	for p, n := range counts {
		ch <- prometheus.MustNewConstMetric(storesDesc, prometheus.GaugeValue, float64(n), string(p))
	}
}
