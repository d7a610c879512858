package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// sbinDirs are searched after PATH: debootstrap lives in /usr/sbin, which a
// root shell has on PATH but `go test` started from a user environment may
// not.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// lookPath finds a program on PATH, then in the sbin directories. (go test
// and go run put their own toolchain first on PATH, so go is found.)
func lookPath(program string) (string, error) {
	if p, err := exec.LookPath(program); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, program)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in %s", program, strings.Join(sbinDirs, ", "))
}

// cmdSpec is one tool run.
type cmdSpec struct {
	// what names the run in errors, e.g. "buildah bud"; empty means the
	// program and its first argument.
	what    string
	program string
	args    []string
	dir     string
	env     []string // added to the environment
	// log receives the command line and the tool's output; the build log of
	// the image, so Builder.Log stays one line per step.
	log io.Writer
	// stdout, when set, receives standard output instead of log.
	stdout io.Writer
	stdin  io.Reader
	// hideVarLib runs the tool in a private mount namespace with an empty
	// tmpfs on /var/lib. For buildah: containers/image keeps a blob info
	// cache in /var/lib/containers/cache for root whatever --root says, and
	// buildah has no flag to move it. The namespace also takes every mount
	// buildah makes with it when it exits, killed or not.
	hideVarLib bool
}

// run runs a tool under nice, since the machine has two cores and other
// builds run beside this one. A failure carries the tail of the tool's output.
func (b *Builder) run(ctx context.Context, c cmdSpec) error {
	path, err := lookPath(c.program)
	if err != nil {
		return err
	}
	niceBin, err := lookPath("nice")
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.runs == nil {
		b.runs = map[string]int{}
	}
	b.runs[c.program]++
	b.mu.Unlock()

	tail := &tailBuffer{max: 4096}
	var out io.Writer = tail
	if c.log != nil {
		out = io.MultiWriter(c.log, tail)
		fmt.Fprintf(c.log, "$ %s %s\n", c.program, strings.Join(c.args, " "))
	}
	argv := append([]string{niceBin, "-n", "10", path}, c.args...)
	var sys *syscall.SysProcAttr
	if c.hideVarLib {
		sh, err := lookPath("sh")
		if err != nil {
			return err
		}
		mount, err := lookPath("mount")
		if err != nil {
			return err
		}
		argv = append([]string{sh, "-c", mount + ` -t tmpfs -o mode=0755,size=64m storefleet-imagebuild /var/lib && exec "$@"`, "sh"}, argv...)
		// Go makes the new namespace's mounts private before the exec, so
		// the tmpfs never shows on the host.
		sys = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = sys
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = c.stdin
	cmd.Stdout = out
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	}
	cmd.Stderr = out
	// SIGTERM first: debootstrap and buildah clean up their mounts and
	// working containers on it, not on SIGKILL.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	start := time.Now()
	err = cmd.Run()
	if c.log != nil {
		fmt.Fprintf(c.log, "# %s: %v after %s\n", c.program, exitStatus(err), time.Since(start).Round(10*time.Millisecond))
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", c.program, ctx.Err())
		}
		what := c.what
		if what == "" {
			what = strings.Join(append([]string{c.program}, c.args[:min(1, len(c.args))]...), " ")
		}
		return fmt.Errorf("%s: %w\n%s", what, err, indent(tail.String()))
	}
	return nil
}

// output runs a tool and returns its standard output.
func (b *Builder) output(ctx context.Context, c cmdSpec) ([]byte, error) {
	var stdout bytes.Buffer
	c.stdout = &stdout
	err := b.run(ctx, c)
	return stdout.Bytes(), err
}

func exitStatus(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "\t(no output)"
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// lock takes the builder's directory lock, which serializes builds across
// processes: they share buildah's storage and the temporary directory, and
// whoever holds the lock may clear what a crashed build left there.
func (b *Builder) lock(ctx context.Context) (unlock func(), err error) {
	if b.Dir == "" {
		return nil, errors.New("imagebuild: Builder.Dir is empty")
	}
	// Absolute, since buildah and debootstrap run in other directories.
	// Written only when it changes, so concurrent builds with an absolute
	// Dir share the Builder without a race.
	dir, err := filepath.Abs(b.Dir)
	if err != nil {
		return nil, err
	}
	if dir != b.Dir {
		b.Dir = dir
	}
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(b.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !waiting {
			b.logf("Waiting for another image build in %s to finish", b.Dir)
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := b.clearTmp(); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// tmpDir holds rootfs trees, layer blobs and archives being written; it is on
// the same filesystem as the cache so a finished archive is renamed into
// place atomically.
func (b *Builder) tmpDir() string { return filepath.Join(b.Dir, "tmp") }

// clearTmp removes what a killed build left in the temporary directory. Only
// the lock holder calls it, so nothing in there is in use. Mounts (a
// debootstrap killed between mounting /proc and unmounting it) are detached
// first, so RemoveAll never descends into a mounted /proc or /dev.
func (b *Builder) clearTmp() error {
	tmp := b.tmpDir()
	if err := unmountUnder(tmp); err != nil {
		return err
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clear %s: %w", tmp, err)
	}
	return os.MkdirAll(tmp, 0o755)
}

// mountsUnder lists the mount points at or below dir, deepest last.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		mp := unescapeMount(f[1])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			found = append(found, mp)
		}
	}
	return found, nil
}

// unmountUnder detaches every mount at or below dir, innermost first.
func unmountUnder(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for i := len(mps) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mps[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("unmount %s: %w", mps[i], err)
		}
	}
	if left, _ := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("mounts left under %s: %s", dir, strings.Join(left, ", "))
	}
	return nil
}

// unescapeMount undoes the octal escapes (\040 for a space) of
// /proc/self/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
