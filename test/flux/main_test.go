// Package flux_test runs the operator's Flux delivery against real
// helm-controller and source-controller. The cluster starts without Flux so
// the first test can watch auto mode pick it up when it is installed.
package flux_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/test/testenv"
)

const platformNamespace = "storefleet-system"

var (
	cluster  *devcluster.Cluster
	workdir  string
	operator *exec.Cmd
	opLog    string
	// chartURL is the operator's chart repository.
	chartURL string
)

func TestMain(m *testing.M) { testenv.ExitMain(run(m)) }

func run(m *testing.M) (int, error) {
	var err error
	var binary string
	if workdir, binary, err = testenv.TestBinary("../..", "storefleet-flux-test-"); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if cluster, err = devcluster.Start(ctx, devcluster.Options{}); err != nil {
		return 0, err
	}
	defer cluster.Stop()
	op, url, _, err := testenv.StartFluxOperator(binary, cluster, workdir, platformNamespace,
		"--flux-unresponsive-after", "5s",
		"--drift-interval", "2s", "--pod-start-timeout", "60s", "--workers", "10")
	if err != nil {
		return 0, err
	}
	defer op.Stop()
	operator, opLog, chartURL = op.Cmd, op.Log, url
	code := m.Run()
	if code != 0 {
		fmt.Printf("operator log: %s\n", opLog)
	} else {
		os.RemoveAll(workdir)
	}
	return code, nil
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
