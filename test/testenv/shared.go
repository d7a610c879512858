package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/devcluster"
)

// UnitEnv is the environment variable `make unit` sets: with it, a test
// that asks SharedCluster for its cluster is skipped instead of starting a
// control plane. `make test` never sets it, so there a cluster that cannot
// start fails the test.
const UnitEnv = "STOREFLEET_UNIT"

// SharedCluster starts one cluster for a package's tests on first use, so
// the package's pure tests run without a control plane (`go test -run
// TestPure ./pkg` starts nothing). Cluster tests call Get first; TestMain
// is RunShared, which stops the cluster after the tests if one started.
type SharedCluster struct {
	// Options are the cluster's options.
	Options devcluster.Options

	once sync.Once
	c    *devcluster.Cluster
	err  error
}

// Get returns the package's cluster, starting it on the first call (3
// minutes at most). A cluster that cannot start fails t with the start
// error, in every call; it never skips — except under `make unit`
// (STOREFLEET_UNIT=1), which runs no cluster test and says so.
func (s *SharedCluster) Get(t testing.TB) *devcluster.Cluster {
	t.Helper()
	if os.Getenv(UnitEnv) != "" {
		t.Skip("cluster test: not part of make unit")
	}
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.c, s.err = devcluster.Start(ctx, s.Options)
	})
	if s.err != nil {
		t.Fatalf("start the local cluster: %v", s.err)
	}
	return s.c
}

// Stop stops the cluster; it is a no-op if Get never started one.
func (s *SharedCluster) Stop() error {
	if s.c == nil {
		return nil
	}
	return s.c.Stop()
}

// RunShared is the whole TestMain of a package with a SharedCluster: it
// runs the tests, stops the cluster if one started, and exits with the
// tests' result (1 when the cluster cannot stop).
func RunShared(m *testing.M, s *SharedCluster) {
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: stop the local cluster: %v\n", err)
		code = 1
	}
	os.Exit(code)
}
