package imagebuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerdConfig is a containerd 1.6 configuration whose every path is under
// dir, with the CRI plugin on: the CRI plugin is what labels imported images
// managed, so without it the test would prove nothing about the kubelet's
// view. Plugins that cannot work here are off to keep its log readable.
const containerdConfig = `version = 2
root = "%[1]s/root"
state = "%[1]s/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "%[1]s/containerd.sock"

[ttrpc]
  address = "%[1]s/containerd.sock.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "%[1]s/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "localhost/pause:3.10"
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    netns_mounts_under_state_dir = true

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      discard_unpacked_layers = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "%[1]s/cni"
`

var toolsContainerd = []tool{asRoot, {program: "containerd", pkg: "containerd"}, {program: "ctr", pkg: "containerd"}}

// startContainerd runs Debian's containerd on a temporary directory until the
// test ends, then stops it and checks it left no mount behind.
func startContainerd(t *testing.T) (ctr, address string) {
	t.Helper()
	bin, err := lookPath("containerd")
	if err != nil {
		t.Fatal(err)
	}
	if ctr, err = lookPath("ctr"); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's cleanup runs after ours, which stops containerd first.
	// The socket path must fit in sun_path (108 bytes): /tmp/TestImport…/001.
	dir := t.TempDir()
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(containerdConfig, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nice", "-n", "10", bin, "--config", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Error("containerd ignored SIGTERM for 15 s")
		}
		logFile.Close()
		assertNoMounts(t, dir)
		if t.Failed() {
			if data, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("containerd log:\n%s", data)
			}
		}
		if err := unmountUnder(dir); err != nil {
			t.Error(err) // t.TempDir's RemoveAll must not run through a mount
		}
	})
	address = filepath.Join(dir, "containerd.sock")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := exec.Command(ctr, "--address", address, "version").Run(); err == nil {
			return ctr, address
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("containerd exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd did not answer within 20 s")
		}
	}
}

func TestImport(t *testing.T) {
	realBuild(t)
	requireHost(t, append(append(toolsContainerd, toolsPause...), toolsBase...)...)
	b, log := newTestBuilder(t)
	ctx := context.Background()
	pause, err := b.Pause(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base, err := b.Base(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctr, address := startContainerd(t)

	for _, img := range []Image{pause, base} {
		start := time.Now()
		if err := b.Import(ctx, ctr, address, img); err != nil {
			t.Fatal(err)
		}
		t.Logf("Import %s: %s", img.Ref(), time.Since(start).Round(time.Millisecond))
		out, err := exec.Command(ctr, "--address", address, "-n", "k8s.io", "images", "ls").CombinedOutput()
		if err != nil {
			t.Fatalf("ctr images ls: %v\n%s", err, out)
		}
		var line string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, img.Ref()+" ") {
				line = l
			}
		}
		if !strings.Contains(line, img.Digest) || !strings.Contains(line, CRIManagedLabel) {
			t.Errorf("ctr -n k8s.io images ls has no %s at %s labelled %s:\n%s", img.Ref(), img.Digest, CRIManagedLabel, out)
		}
	}

	// Already there at that digest: no second import.
	start := time.Now()
	if err := b.Import(ctx, ctr, address, base); err != nil {
		t.Fatal(err)
	}
	t.Logf("Import %s again: %s", base.Ref(), time.Since(start).Round(time.Millisecond))
	if !strings.Contains(log.String(), "Image "+base.Ref()+" already in containerd") {
		t.Errorf("second import of %s was not skipped", base.Ref())
	}
}
