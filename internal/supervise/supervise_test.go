package supervise_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/supervise"
)

func pidIn(t *testing.T, dir string) int {
	t.Helper()
	pid, err := supervise.ReadPID(dir, "sleeper")
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("pid file: %v", err)
	}
	return pid
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedLog is a supervisor's Log read by the test while the supervisor
// writes it from its own goroutine.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestACrashedProcessIsStartedAgain: a process killed after its first run is
// started again with a new pid in its pid file, its log keeps both runs, and
// ending supervision stops it and removes the pid file.
func TestACrashedProcessIsStartedAgain(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedLog
	sv, err := supervise.Start(ctx, supervise.Process{
		Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "echo started; exec sleep 60"}, Dir: dir,
		Log: &out, FirstRun: 100 * time.Millisecond, Grace: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	first := sv.PID()
	if got := pidIn(t, dir); got != first {
		t.Fatalf("pid file says %d, the process is %d", got, first)
	}
	time.Sleep(200 * time.Millisecond) // past its first run
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new process", func() bool { p := pidIn(t, dir); return p != 0 && p != first && devcluster.Alive(p) })
	// The pid file is written as the process starts, the restart counted
	// and announced just after: wait for the announcement, then count.
	waitFor(t, "the restart announced", func() bool { return strings.Contains(out.String(), "running again") })
	if sv.Restarts() != 1 {
		t.Errorf("restarts %d, want 1", sv.Restarts())
	}
	if !strings.Contains(out.String(), "killed by SIGKILL") {
		t.Errorf("the restart was announced as %q, want the signal named", out.String())
	}
	// The new process is alive before its shell has written a line: let it
	// write before supervision ends, or the log could not hold its run.
	logPath := filepath.Join(dir, "sleeper.log")
	waitFor(t, "the second run's output", func() bool {
		log, _ := os.ReadFile(logPath)
		return strings.Count(string(log), "started") >= 2
	})
	second := sv.PID()
	cancel()
	select {
	case err := <-sv.Done():
		if err != nil {
			t.Errorf("supervision ended with %v after its context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("supervision did not end with its context")
	}
	if devcluster.Alive(second) {
		t.Errorf("pid %d still runs after supervision ended", second)
	}
	if _, err := os.Stat(supervise.PIDPath(dir, "sleeper")); !os.IsNotExist(err) {
		t.Errorf("the pid file is still there (%v)", err)
	}
	log, _ := os.ReadFile(logPath)
	if n := strings.Count(string(log), "started"); n != 2 {
		t.Errorf("the log holds %d runs, want 2:\n%s", n, log)
	}
}

// TestAnEarlyExitIsAnError: a process that exits during its first run (a
// bad setting) is not restarted; supervision ends with its log's tail.
func TestAnEarlyExitIsAnError(t *testing.T) {
	dir := t.TempDir()
	sv, err := supervise.Start(context.Background(), supervise.Process{
		Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "echo 'flag provided but not defined: -bogus' >&2; exit 2"}, Dir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sv.Done():
		if err == nil || !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(err.Error(), "flag provided but not defined") {
			t.Errorf("supervision ended with %v, want the exit status and the log's last lines", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an early exit did not end supervision")
	}
	if sv.Restarts() != 0 {
		t.Errorf("restarted %d times, want none", sv.Restarts())
	}
}
