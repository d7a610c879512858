package testenv

import (
	"github.com/storefleet/storefleet/internal/devcluster"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
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
