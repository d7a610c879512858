package openapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// apiMetrics are the API's Prometheus metrics, on a registry of its own so
// that several servers (tests, API beside the operator) never collide.
type apiMetrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	created       prometheus.Counter
	rateLimited   prometheus.Counter
	quotaRejected prometheus.Counter
}

func newAPIMetrics() *apiMetrics {
	m := &apiMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storefleet_api_requests_total",
			Help: "Intent API requests by operation and HTTP status code.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "storefleet_api_request_duration_seconds",
			Help:    "Intent API request duration by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "storefleet_stores_created_total",
			Help: "Stores created through the Intent API.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "storefleet_api_rate_limited_requests_total",
			Help: "Mutating requests refused by the per-client-IP rate limit.",
		}),
		quotaRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "storefleet_api_quota_rejections_total",
			Help: "Store creations refused because the user had reached the store quota.",
		}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.created, m.rateLimited, m.quotaRejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *apiMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// observe is a Huma middleware counting every operation's requests.
func (m *apiMetrics) observe(ctx huma.Context, next func(huma.Context)) {
	start := time.Now()
	next(ctx)
	op := ctx.Operation().OperationID
	m.requests.WithLabelValues(op, strconv.Itoa(ctx.Status())).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
