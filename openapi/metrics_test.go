package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestMetrics(t *testing.T) {
	s, api := newTestAPI(t, options{})
	alice := user(t, "alice")
	cleanup(t, "metered")
	api.Post("/api/v1/stores", as(alice), map[string]any{"name": "metered", "engine": "medusa"})
	api.Get("/api/v1/stores/metered", as(alice))
	api.Get("/api/v1/stores/unmetered", as(alice))

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`storefleet_api_requests_total{code="201",operation="create-store"} 1`,
		`storefleet_api_requests_total{code="200",operation="get-store"} 1`,
		`storefleet_api_requests_total{code="404",operation="get-store"} 1`,
		`storefleet_stores_created_total 1`,
		`storefleet_api_request_duration_seconds_count{operation="get-store"} 2`,
		`storefleet_api_rate_limited_requests_total 0`,
		`storefleet_api_quota_rejections_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "storefleet_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}
