package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is one host process of the node, logging to logs/<name>.log.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startDaemon starts bin with args in its own process group, so a Ctrl-C
// in the terminal reaches storefleet only and the teardown stops the node's
// processes in order (kubelet before containerd, so pods get CNI DEL).
func startDaemon(l layout, name, bin string, args []string, env ...string) (*daemon, error) {
	logPath := filepath.Join(l.logs(), name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = l.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	f.Close()
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(d.done) }()
	return d, nil
}

// exited reports whether the process has ended (then the caller shows its log).
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then kills.
func (d *daemon) stop(grace time.Duration) {
	if d == nil || d.exited() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// logTail is the end of the daemon's log, for error messages.
func (d *daemon) logTail(n int) string {
	data, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every 200 ms until it holds, d exits, or the timeout.
func waitFor(ctx context.Context, timeout time.Duration, what string, d *daemon, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		if d != nil && d.exited() {
			return fmt.Errorf("%s exited while waiting for %s; its log ends:\n%s", d.name, what, d.logTail(20))
		}
		select {
		case <-ctx.Done():
			tail := ""
			if d != nil {
				tail = "\n" + d.name + " log ends:\n" + d.logTail(20)
			}
			return fmt.Errorf("waiting for %s: %w (last: %v)%s", what, ctx.Err(), last, tail)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// processesWith lists the pids whose command line contains marker: the
// containerd shims (reparented to us, not our children) are found this way.
func processesWith(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(data), marker) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil) // reap our zombies
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}
