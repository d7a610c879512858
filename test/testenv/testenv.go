// Package testenv holds what the test suites share on top of the local
// cluster: the TestMain prologue and epilogue, polling assertions, and the
// storefleet binary built the way it ships. It is imported only by tests;
// the cluster itself lives in internal/devcluster, which `storefleet dev`
// ships.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/devcluster"
)

// Eventually polls cond every 100 ms until it holds, failing t after
// timeout with the last error cond returned and whatever context adds.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, error), context ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	var extra strings.Builder
	for _, c := range context {
		extra.WriteString("\n" + c())
	}
	t.Fatalf("timed out after %s waiting for %s (last: %v)%s", timeout, what, lastErr, extra.String())
}

// ExitMain ends a test binary whose TestMain set up in run: a set-up error
// fails it with its message (a missing component is a failure, never a
// silent skip); otherwise it exits with the tests' code.
func ExitMain(code int, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// TestBinary builds the storefleet binary of the module at moduleRoot into a
// new temporary directory (named with prefix), returned as the workdir.
func TestBinary(moduleRoot, prefix string) (workdir, binary string, err error) {
	if workdir, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", err
	}
	binary, err = BuildStorefleet(moduleRoot, workdir)
	return workdir, binary, err
}

// Main is the whole TestMain of a package that shares one cluster: it
// starts the cluster into *c, runs the tests, stops it, and exits with the
// tests' result (1 when the cluster cannot start or stop).
func Main(m *testing.M, opts devcluster.Options, c **devcluster.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	var err error
	*c, err = devcluster.Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start the local cluster: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := (*c).Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: stop the local cluster: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// BuildStorefleet builds the storefleet binary from the module at
// moduleRoot into dir, for tests that run it as a child process.
func BuildStorefleet(moduleRoot, dir string) (string, error) {
	binary := filepath.Join(dir, "storefleet")
	// The flags of `make build`: tests run the artifact that ships, and
	// share its build cache.
	cmd := exec.Command("go", "build", "-trimpath", "-o", binary, "./cmd/storefleet")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build storefleet: %v\n%s", err, out)
	}
	return binary, nil
}
