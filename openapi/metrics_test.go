package openapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/storefleet/storefleet/openapi"
)

func TestMetrics(t *testing.T) {
	s, api := newTestAPI(t, options{})
	alice := user(t, "alice")
	cleanup(t, "metered")
	api.Post("/api/v1/stores", as(alice), map[string]any{"name": "metered", "engine": "medusa"})
	api.Get("/api/v1/stores/metered", as(alice))
	api.Get("/api/v1/stores/unmetered", as(alice))

	// Not on the API's own handler, which the public Ingress routes to.
	public := httptest.NewRecorder()
	s.Handler().ServeHTTP(public, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if public.Code == http.StatusOK && strings.Contains(public.Body.String(), "storefleet_api_requests_total") {
		t.Errorf("the API's public handler serves /metrics")
	}
	rec := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
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

func TestAuditLogLinePerMutation(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	_, api := newTestAPI(t, options{cfg: openapi.Config{Log: log}})
	alice := user(t, "alice")
	cleanup(t, "audited")
	created := api.Post("/api/v1/stores", as(alice), map[string]any{"name": "audited", "engine": "medusa"})
	api.Get("/api/v1/stores/audited", as(alice))
	api.Delete("/api/v1/stores/audited", as(user(t, "mallory")))

	mu.Lock()
	defer mu.Unlock()
	var audits []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "Audit" {
			audits = append(audits, m)
		}
	}
	if len(audits) != 2 {
		t.Fatalf("%d audit lines for 2 mutations (reads are not audited): %v", len(audits), audits)
	}
	want := []map[string]any{
		{"user": alice, "operation": "create-store", "store": "audited", "status": float64(201), "clientIP": "127.0.0.1", "requestId": created.Header().Get(openapi.RequestIDHeader)},
		{"user": user(t, "mallory"), "operation": "delete-store", "store": "audited", "status": float64(404)},
	}
	for i, w := range want {
		for k, v := range w {
			if audits[i][k] != v {
				t.Errorf("audit line %d: %s = %v, want %v", i, k, audits[i][k], v)
			}
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestDocsAndSpecAreServed(t *testing.T) {
	_, api := newUnitTestAPI(t, options{})
	if rec := api.Get("/docs"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<html") {
		t.Errorf("/docs: %d", rec.Code)
	}
	if rec := api.Get("/openapi.yaml"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "operationId: create-store") {
		t.Errorf("/openapi.yaml: %d", rec.Code)
	}
}
