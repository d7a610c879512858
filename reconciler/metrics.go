package reconciler

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Operator metrics (storefleet_stores{phase} is phaseCollector), registered with controller-runtime's registry so they are
// served on the manager's /metrics beside its own.
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
	helmActions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "storefleet_helm_actions_total",
		Help: "Release-changing Helm SDK actions, by action.",
	}, []string{"action"})
)

func init() {
	metrics.Registry.MustRegister(storesCreated, provisioningFailures, provisioningDuration, driftCorrections, helmActions)
}
