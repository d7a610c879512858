package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/supervise"
)

// Dev is a running `storefleet dev`, as a newcomer starts it.
type Dev struct {
	// URL is the Intent API and dashboard.
	URL string
	// Kubeconfig is the one dev printed.
	Kubeconfig string
	// IngressURL is the real node's ingress dev printed (empty without one).
	IngressURL string
	// OperatorMetricsURL is the operator's /metrics dev printed.
	OperatorMetricsURL string
	Workdir            string

	cmd *exec.Cmd
	// exited is closed when dev's process has ended, with its error in exitErr.
	exited  chan struct{}
	exitErr error
	mu      sync.Mutex
	out     []string
}

var (
	kubeconfigLine = regexp.MustCompile(`export KUBECONFIG=(\S+)`)
	ingressLine    = regexp.MustCompile(`ingress (http://localhost:\d+)`)
	metricsLine    = regexp.MustCompile(`Operator metrics: (http://\S+/metrics)`)
)

// StartDev runs `binary dev --workdir workdir --api-addr <free port> args...`
// and returns once it printed its instructions (8 min at most: with the real
// node, dev also imports the store images, about a gigabyte).
func StartDev(binary, workdir string, args ...string) (*Dev, error) {
	port, err := devcluster.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// Suites that do not ask for the real node run without it: one node per
	// machine, and the ones that need it (test/store) wait for it in turn.
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--real-node") }) {
		args = append(args, "--real-node=false")
	}
	d := &Dev{URL: "http://" + addr, Workdir: workdir, exited: make(chan struct{})}
	d.cmd = exec.Command(binary, append([]string{"dev", "--workdir", workdir, "--api-addr", addr}, args...)...)
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	d.cmd.Stderr = os.Stderr
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			l := sc.Text()
			d.mu.Lock()
			d.out = append(d.out, l)
			if m := kubeconfigLine.FindStringSubmatch(l); m != nil {
				d.Kubeconfig = m[1]
			}
			if m := ingressLine.FindStringSubmatch(l); m != nil {
				d.IngressURL = m[1]
			}
			if m := metricsLine.FindStringSubmatch(l); m != nil {
				d.OperatorMetricsURL = m[1]
			}
			d.mu.Unlock()
			if strings.Contains(l, "Press Ctrl-C to stop everything") {
				once.Do(func() { close(ready) })
			}
		}
		d.exitErr = d.cmd.Wait()
		close(d.exited)
	}()
	select {
	case <-ready:
		// The instructions come as the API starts listening: wait for it.
		for i := 0; i < 150; i++ {
			if resp, err := http.Get(d.URL + "/healthz"); err == nil {
				resp.Body.Close()
				return d, nil
			}
			time.Sleep(200 * time.Millisecond)
		}
		return d, fmt.Errorf("storefleet dev's API at %s does not answer:\n%s", d.URL, d.Output())
	case <-d.exited:
		return nil, fmt.Errorf("storefleet dev exited before it was ready (%v):\n%s", d.exitErr, d.Output())
	case <-time.After(8 * time.Minute):
		_ = d.cmd.Process.Kill()
		return nil, fmt.Errorf("storefleet dev printed no instructions within 8 minutes:\n%s", d.Output())
	}
}

// Output is what dev printed so far.
func (d *Dev) Output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.out, "\n")
}

// Diagnosis says, for a test that failed against dev, whether dev is still
// running and what it and its operator and API last logged: a browser that
// cannot reach the dashboard is otherwise a mystery once the workdir is gone.
func (d *Dev) Diagnosis() string {
	var b strings.Builder
	select {
	case <-d.exited:
		fmt.Fprintf(&b, "storefleet dev has exited (%v); its last output:\n", d.exitErr)
	default:
		b.WriteString("storefleet dev is still running; its last output:\n")
	}
	b.WriteString(devcluster.LastLines(d.Output(), 25) + "\n")
	for _, log := range []string{"operator.log", "api.log"} {
		data, err := os.ReadFile(filepath.Join(d.Workdir, log))
		if err != nil {
			fmt.Fprintf(&b, "\n%s: %v\n", log, err)
			continue
		}
		fmt.Fprintf(&b, "\nthe end of %s:\n%s", log, devcluster.LastLines(string(data), 25)+"\n")
	}
	return b.String()
}

// Stop presses Ctrl-C and waits up to a minute for dev to exit cleanly; it
// kills dev when it does not.
func (d *Dev) Stop() error {
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-d.exited:
		if d.exitErr != nil {
			return fmt.Errorf("storefleet dev exited with %v after Ctrl-C", d.exitErr)
		}
		return nil
	case <-time.After(2 * time.Minute):
		// The real node's teardown stops its pods and containerd first.
		_ = d.cmd.Process.Kill()
		return errors.New("storefleet dev did not stop within 2 minutes of Ctrl-C")
	}
}

// Kill ends dev at once (test cleanup after a failure).
func (d *Dev) Kill() { _ = d.cmd.Process.Kill() }

// CrashOperator kills dev's operator process outright (SIGKILL: no lease
// released, nothing flushed, as in a node failure) and returns once dev has
// started a new one, with that process's id.
func (d *Dev) CrashOperator() (int, error) {
	old, err := supervise.ReadPID(d.Workdir, "operator")
	if err != nil {
		return 0, fmt.Errorf("dev's operator: %w", err)
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("kill the operator (pid %d): %w", old, err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if pid, err := supervise.ReadPID(d.Workdir, "operator"); err == nil && pid != old && devcluster.Alive(pid) {
			return pid, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, fmt.Errorf("dev did not start the operator again within a minute of killing pid %d:\n%s", old, d.Output())
}
