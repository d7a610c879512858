package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/internal/devcluster"
)

// Operator is a storefleet operator binary a test package runs against its
// cluster, logging to a file in the package's workdir.
type Operator struct {
	// Log is the operator's log file.
	Log string
	Cmd *exec.Cmd
}

// StartOperator runs `binary operator --kubeconfig <c> --health-addr 0
// --leader-elect=false <args>`, logging to workdir/operator.log.
func StartOperator(binary string, c *devcluster.Cluster, workdir string, args ...string) (*Operator, error) {
	log := filepath.Join(workdir, "operator.log")
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, append([]string{"operator", "--kubeconfig", c.Kubeconfig, "--health-addr", "0", "--leader-elect=false"}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	return &Operator{Log: log, Cmd: cmd}, nil
}

// Stop asks the operator to shut down (SIGTERM) and waits for it.
func (o *Operator) Stop() {
	_ = o.Cmd.Process.Signal(syscall.SIGTERM)
	_ = o.Cmd.Wait()
}

// StartFluxOperator runs the operator in auto delivery with its HelmReleases
// in namespace (created if missing), serving the builtin chart to
// source-controller and its metrics on free loopback ports; it returns once
// the chart repository answers.
func StartFluxOperator(binary string, c *devcluster.Cluster, workdir, namespace string, args ...string) (op *Operator, chartURL, metricsURL string, err error) {
	if err := c.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, "", "", err
	}
	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = devcluster.FreePort(); err != nil {
			return nil, "", "", err
		}
	}
	metricsAddr, chartAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	chartURL = "http://" + chartAddr
	op, err = StartOperator(binary, c, workdir, append([]string{
		"--delivery", "auto",
		"--flux-namespace", namespace,
		"--chart-addr", chartAddr, "--chart-url", chartURL,
		"--metrics-addr", metricsAddr,
	}, args...)...)
	if err != nil {
		return nil, "", "", err
	}
	if err := WaitHTTP(chartURL + "/index.yaml"); err != nil {
		op.Stop()
		data, _ := os.ReadFile(op.Log)
		return nil, "", "", fmt.Errorf("operator chart repository: %w\n%s", err, data)
	}
	return op, chartURL, "http://" + metricsAddr + "/metrics", nil
}
