// Package realnode_test is the real-node tier: pods that really run on the
// local cluster's real worker node (kubelet, containerd, CNI, kube-proxy,
// kube-router, CoreDNS, the ingress controller, local volumes), checked by
// what a user would see — the uid inside the container, a memory limit in
// the host's cgroup, an application's reply through DNS, a Service and the
// ingress, traffic that NetworkPolicies refuse, data that survives its pod.
//
// A host that cannot run the node fails this package with the reason and the
// Debian packages to install; it never skips.
package realnode_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/imagebuild"
	"github.com/storefleet/storefleet/test/testenv"
)

var (
	cluster *devcluster.Cluster
	// probeImage is netprobe (./netprobe) on the Debian base, built locally.
	probeImage string
	// storefleet is the binary under test, for the operator.
	storefleet, workdir string
)

func TestMain(m *testing.M) { testenv.ExitMain(run(m)) }

func run(m *testing.M) (code int, err error) {
	if workdir, storefleet, err = testenv.TestBinary("../..", "storefleet-realnode-test-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(workdir)
	img, err := buildProbeImage(workdir)
	if err != nil {
		return 0, err
	}
	probeImage = img.Ref()
	// The node's lock may be held by another test package's node: waiting
	// for it is part of the start.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if cluster, err = devcluster.Start(ctx, devcluster.Options{RealNode: true, Log: os.Stderr}); err != nil {
		return 0, fmt.Errorf("start the local cluster with its real node: %w", err)
	}
	node := cluster.Node
	if err := devcluster.ImageBuilder(os.Stderr).Import(ctx, node.Ctr(), node.ContainerdAddress(), img); err != nil {
		cluster.Stop()
		return 0, err
	}
	code = m.Run()
	if err := cluster.Stop(); err != nil {
		// Stop checks the host itself: anything the node left is an error.
		return 0, fmt.Errorf("stop the local cluster: %w", err)
	}
	if left := node.Leftovers(); len(left) > 0 {
		return 0, fmt.Errorf("the real node left behind: %v", left)
	}
	fmt.Fprintln(os.Stderr, "Teardown left nothing on the host (processes, mounts, links, netfilter, cgroups, paths, sysctls).")
	return code, nil
}

// buildProbeImage builds netprobe and its image (cached by content: an
// unchanged netprobe is not rebuilt).
func buildProbeImage(dir string) (imagebuild.Image, error) {
	ctxDir := filepath.Join(dir, "netprobe-image")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		return imagebuild.Image{}, err
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ctxDir, "netprobe"), "./netprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return imagebuild.Image{}, fmt.Errorf("build netprobe: %v\n%s", err, out)
	}
	cf := "ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim\nFROM ${BASE_IMAGE}\nCOPY netprobe /usr/local/bin/netprobe\nUSER 1000:1000\nENTRYPOINT [\"/usr/local/bin/netprobe\"]\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(cf), 0o644); err != nil {
		return imagebuild.Image{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return devcluster.ImageBuilder(os.Stderr).Build(ctx, imagebuild.Spec{
		Name: "localhost/storefleet-test/netprobe", Tag: "1", Context: ctxDir, Containerfile: filepath.Join(ctxDir, "Containerfile"),
	})
}

// restrictedNamespace creates a namespace that enforces Pod Security
// "restricted", like a store's.
func restrictedNamespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}
	if err := cluster.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(context.Background(), ns) })
	return name
}
