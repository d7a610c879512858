// Package flux_test runs the operator's Flux delivery against real
// helm-controller and source-controller. The cluster starts without Flux so
// the first test can watch auto mode pick it up when it is installed.
package flux_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: platformNamespace}}); err != nil {
		return 0, err
	}
	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = devcluster.FreePort(); err != nil {
			return 0, err
		}
	}
	chartAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	chartURL = "http://" + chartAddr
	op, err := testenv.StartOperator(binary, cluster, workdir,
		"--delivery", "auto",
		"--flux-namespace", platformNamespace,
		"--chart-addr", chartAddr, "--chart-url", "http://"+chartAddr,
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--flux-unresponsive-after", "5s",
		"--drift-interval", "2s", "--pod-start-timeout", "60s", "--workers", "10")
	if err != nil {
		return 0, err
	}
	defer op.Stop()
	operator, opLog = op.Cmd, op.Log
	if err := waitHTTP("http://" + chartAddr + "/index.yaml"); err != nil {
		return 0, fmt.Errorf("operator chart repository: %w\n%s", err, tail(opLog))
	}
	code := m.Run()
	if code != 0 {
		fmt.Printf("operator log: %s\n", opLog)
	} else {
		os.RemoveAll(workdir)
	}
	return code, nil
}

func waitHTTP(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within 30 s", url)
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
