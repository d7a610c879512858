// Package scale measures the operator at fleet sizes (`make bench-scale`,
// issue #19): N stores at once against bare Flux HelmReleases and the raw
// server-side-apply floor, memory per store, the idle cost of a Ready fleet,
// drift healing under load and object sizes. Its TestMain starts nothing:
// the cluster and the operator start in the first benchmark, so `go test
// ./...` (make test) pays nothing for this package.
package scale_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/test/testenv"
)

// platformNamespace holds the stores' HelmReleases.
const platformNamespace = "storefleet-system"

var shared = testenv.SharedCluster{Options: devcluster.Options{Flux: true}}

// fleet is what the benchmarks share once started.
type fleet struct {
	cluster    *devcluster.Cluster
	operator   *testenv.Operator
	chartURL   string
	metricsURL string
	workdir    string
}

var (
	env      fleet
	setUp    sync.Once
	setUpErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	// The operator stops before the cluster it talks to.
	if env.operator != nil {
		env.operator.Stop()
	}
	if env.workdir != "" && code == 0 {
		os.RemoveAll(env.workdir)
	}
	if err := shared.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: stop the local cluster: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// start starts the cluster (with Flux) and one operator in auto delivery
// on the first call: each store's delivery annotation picks Helm SDK or
// Flux mode.
func start(b *testing.B) *fleet {
	b.Helper()
	c := shared.Get(b)
	setUp.Do(func() {
		env.cluster = c
		var binary string
		if env.workdir, binary, setUpErr = testenv.TestBinary("../..", "storefleet-scale-"); setUpErr != nil {
			return
		}
		// STOREFLEET_SCALE_OPERATOR_GOGC sets the operator's GOGC, and
		// only the operator's: the cluster's processes run already. S3's
		// heap in use is about twice its live heap at Go's default of 100.
		if gogc := os.Getenv("STOREFLEET_SCALE_OPERATOR_GOGC"); gogc != "" {
			old, had := os.LookupEnv("GOGC")
			_ = os.Setenv("GOGC", gogc)
			defer func() {
				if had {
					_ = os.Setenv("GOGC", old)
				} else {
					_ = os.Unsetenv("GOGC")
				}
			}()
		}
		// Production defaults but the benchmark's drift interval (20 s
		// unless STOREFLEET_SCALE_DRIFT_INTERVAL says otherwise), so the
		// idle window of S4 spans three of them in a minute.
		env.operator, env.chartURL, env.metricsURL, setUpErr = testenv.StartFluxOperator(binary, c, env.workdir, platformNamespace,
			"--drift-interval", driftInterval.String(), "--pod-start-timeout", "5m", "--workers", "10", "--pprof")
	})
	if setUpErr != nil {
		b.Fatalf("start the operator: %v", setUpErr)
	}
	return &env
}
