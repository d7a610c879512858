// Package supervise keeps a local process running: started again whenever it
// exits, as a kubelet restarts a crashed container.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Process is a long-running local process (storefleet dev's operator) that
// is started again whenever it exits, the way a kubelet restarts a crashed
// container: the operator then resumes from the cluster alone, as it must after
// a restart in a real installation, and `kill $(cat operator.pid)` is how a
// developer (or test/store) restarts it.
type Process struct {
	// Name says what the process is in messages ("operator").
	Name string
	// Path and Args are the command.
	Path string
	Args []string
	// Dir holds <Name>.log (stdout and stderr, appended across restarts) and
	// <Name>.pid (the running process).
	Dir string
	// Log gets one line per start and exit.
	Log io.Writer
	// Grace is how long a stop waits after SIGTERM before it kills
	// (default 35 s: the operator's own graceful shutdown is 30 s).
	Grace time.Duration
	// FirstRun is how long the first run must last for a later exit to be a
	// crash to restart from (default 10 s); an earlier exit is a setting that
	// cannot work (a bad flag, a taken port), and restarting would hide it.
	FirstRun time.Duration
}

// Supervisor runs one Process.
type Supervisor struct {
	spec     Process
	done     chan error
	mu       sync.Mutex
	pid      int
	restarts int
}

// Start starts s and keeps it running until ctx ends; then it stops the
// process (SIGTERM, then SIGKILL after s.Grace) and Done is closed with nil.
// An exit within the first run's grace period ends supervision with the
// process's error and the tail of its log.
func Start(ctx context.Context, s Process) (*Supervisor, error) {
	if s.Log == nil {
		s.Log = io.Discard
	}
	if s.Grace == 0 {
		s.Grace = 35 * time.Second
	}
	if s.FirstRun == 0 {
		s.FirstRun = 10 * time.Second
	}
	sv := &Supervisor{spec: s, done: make(chan error, 1)}
	cmd, exited, err := sv.start()
	if err != nil {
		return nil, err
	}
	go func() { sv.done <- sv.run(ctx, cmd, exited) }()
	return sv, nil
}

// Done yields the reason supervision ended: nil after ctx ended.
func (sv *Supervisor) Done() <-chan error { return sv.done }

// PID is the running process's id.
func (sv *Supervisor) PID() int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.pid
}

// Restarts counts the restarts after an exit.
func (sv *Supervisor) Restarts() int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.restarts
}

func (sv *Supervisor) logPath() string { return filepath.Join(sv.spec.Dir, sv.spec.Name+".log") }
func (sv *Supervisor) pidPath() string { return PIDPath(sv.spec.Dir, sv.spec.Name) }

// PIDPath is the file holding the running process's id of the Process
// named name in dir.
func PIDPath(dir, name string) string { return filepath.Join(dir, name+".pid") }

// ReadPID is the id in the pid file of the Process named name in dir, as
// another process (a developer's kill, a test) finds it.
func ReadPID(dir, name string) (int, error) {
	data, err := os.ReadFile(PIDPath(dir, name))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// start runs the command in its own process group (a Ctrl-C in the terminal
// reaches dev only, which then stops it in order), dying with dev if dev is
// killed outright.
func (sv *Supervisor) start() (*exec.Cmd, chan error, error) {
	f, err := os.OpenFile(sv.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	cmd := exec.Command(sv.spec.Path, sv.spec.Args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start the %s: %w", sv.spec.Name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	sv.mu.Lock()
	sv.pid = cmd.Process.Pid
	sv.mu.Unlock()
	if err := os.WriteFile(sv.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return nil, nil, err
	}
	return cmd, exited, nil
}

func (sv *Supervisor) run(ctx context.Context, cmd *exec.Cmd, exited chan error) error {
	defer os.Remove(sv.pidPath())
	first, started := true, time.Now()
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(sv.spec.Grace):
				_ = cmd.Process.Kill()
				<-exited
			}
			return nil
		case err := <-exited:
			ran := time.Since(started)
			if first && ran < sv.spec.FirstRun {
				return fmt.Errorf("the %s exited after %s (%v):\n%s", sv.spec.Name, ran.Round(time.Millisecond), exitReason(err), sv.logTail(20))
			}
			first = false
			if ran > time.Minute {
				backoff = time.Second // it had recovered: a new crash starts the backoff over
			}
			fmt.Fprintf(sv.spec.Log, "The %s exited (%s) after %s; starting it again in %s (log %s)\n", sv.spec.Name, exitReason(err), ran.Round(time.Second), backoff, sv.logPath())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			var startErr error
			if cmd, exited, startErr = sv.start(); startErr != nil {
				return startErr
			}
			started = time.Now()
			sv.mu.Lock()
			sv.restarts++
			sv.mu.Unlock()
			fmt.Fprintf(sv.spec.Log, "The %s is running again (pid %d)\n", sv.spec.Name, sv.PID())
		}
	}
}

// exitReason is how the process ended: its status or the signal.
func exitReason(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + unix.SignalName(ws.Signal())
		}
		return fmt.Sprintf("exit status %d", exit.ExitCode())
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (sv *Supervisor) logTail(n int) string {
	data, err := os.ReadFile(sv.logPath())
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
