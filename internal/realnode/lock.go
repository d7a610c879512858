package realnode

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lockPath is host-wide on purpose: the real node owns host-wide things (the
// kubelet's ports, /kubepods cgroups, the bridge and pod CIDR), so two nodes
// on one machine, from two `storefleet dev`s or two test packages, would
// break each other.
const lockPath = "/run/storefleet-real-node.lock"

// hostLock is the held lock; release frees it.
type hostLock struct{ f *os.File }

// acquireLock takes the host's real-node lock. When another process holds
// it, it says who once on log and waits until ctx ends. previousDir is the
// directory of the last node that held it, for cleaning up after one that
// died without its teardown.
func acquireLock(ctx context.Context, workdir string, log io.Writer) (l *hostLock, previousDir string, err error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", lockPath, err)
	}
	said := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK {
			f.Close()
			return nil, "", fmt.Errorf("lock %s: %w", lockPath, err)
		}
		if !said {
			holder, _ := os.ReadFile(lockPath)
			fmt.Fprintf(log, "Only one real node can run on a machine; waiting for the one held by %s ...\n", strings.TrimSpace(string(holder)))
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, "", fmt.Errorf("another real node runs on this machine (%s lock held); only one can run at a time: %w", lockPath, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	// A clean Stop empties the file; a holder that died left its line.
	if prev, err := os.ReadFile(lockPath); err == nil {
		if _, after, ok := strings.Cut(string(prev), "(workdir "); ok {
			previousDir = strings.TrimSuffix(strings.TrimSpace(after), ")")
		}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d (workdir %s)\n", os.Getpid(), filepath.Clean(workdir))), 0)
	return &hostLock{f: f}, previousDir, nil
}

func (l *hostLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
	l.f = nil
}
