package scale_test

import (
	"slices"
	"testing"

	"github.com/storefleet/storefleet/test/testenv"
)

// TestScaleSizes: the sizes a user sets come back ascending and distinct,
// the default is the curve, and a bad list is refused by name.
func TestScaleSizes(t *testing.T) {
	for in, want := range map[string][]int{"": {100, 250, 500, 1000}, "250, 100,100": {100, 250}} {
		if got, err := testenv.ParseScaleSizes(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseScaleSizes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "100,x", "-5"} {
		if _, err := testenv.ParseScaleSizes(bad); err == nil {
			t.Errorf("ParseScaleSizes(%q) accepted", bad)
		}
	}
}

// TestParseMetrics reads the figures the benchmark takes from the
// operator's and the API server's /metrics.
func TestParseMetrics(t *testing.T) {
	s := testenv.ParseMetrics(`# HELP rest_client_requests_total x
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:1",method="GET"} 7
rest_client_requests_total{code="201",host="127.0.0.1:1",method="POST"} 2
rest_client_requests_total{code="200",host="127.0.0.1:1",method="POST"} 1
go_memstats_heap_inuse_bytes 1.048576e+06
`)
	if got := s.By("rest_client_requests_total", "method"); got["GET"] != 7 || got["POST"] != 3 {
		t.Errorf("by method = %v, want GET 7, POST 3", got)
	}
	if got := s.Sum("go_memstats_heap_inuse_bytes", nil); got != 1<<20 {
		t.Errorf("heap in use = %v, want 1 MiB", got)
	}
	if got := testenv.Top(testenv.Delta(map[string]float64{"GET": 2}, s.By("rest_client_requests_total", "method")), 1); got != "GET=5" {
		t.Errorf("top delta = %q, want GET=5", got)
	}
}
