package devcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storefleetv1alpha1 "github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/imagebuild"
	"github.com/storefleet/storefleet/internal/manifests"
	"github.com/storefleet/storefleet/internal/realnode"
)

const (
	// NodeName is the simulated node every pod lands on.
	NodeName = "kwok-node-0"
	// StorageClass is the default StorageClass; kwok binds its PVCs at once.
	StorageClass = "standard"
	// FluxNamespace is where the Flux controllers look for their own objects.
	FluxNamespace = "flux-system"
	// kwokNodeAnnotation marks the nodes kwok simulates; kwok-controller
	// manages only those, and the operator calls their stores Simulated.
	kwokNodeAnnotation = storefleetv1alpha1.SimulatedNodeAnnotation
	// fieldManager owns what the launcher applies.
	fieldManager = "storefleet-localcluster"
)

// Options configure a local cluster.
type Options struct {
	// Name of the cluster; a random one when empty.
	Name string
	// Workdir holds the PKI, kubeconfig, logs and etcd data; a new temporary
	// directory (removed by Stop) when empty.
	Workdir string
	// Flux also runs helm-controller and source-controller with their CRDs.
	Flux bool
	// RealNode also starts the real worker node (see internal/realnode) from
	// the binaries of `make tools` and the images of `make images`.
	RealNode bool
	// IngressAddr is the loopback address of the real node's ingress
	// ("127.0.0.1:0": a free port).
	IngressAddr string
	// NodeImages are imported into the real node besides its own (the store
	// chart's, from BuildStoreImages).
	NodeImages []imagebuild.Image
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Cluster is a running local control plane.
type Cluster struct {
	// Name is the kwokctl cluster name.
	Name string
	// Workdir holds everything the cluster writes.
	Workdir string
	// Kubeconfig is the admin kubeconfig file.
	Kubeconfig string
	// Config is the admin REST config.
	Config *rest.Config
	// Client is an admin client knowing the core, apiextensions and storefleet types.
	Client client.Client
	// SourceStorageAddr is source-controller's artifact server (Flux only).
	SourceStorageAddr string
	// Node is the real worker node, when Options.RealNode started one.
	Node *realnode.Node

	tools       Tools
	realNode    bool
	ownWorkdir  bool
	log         io.Writer
	controllers []*exec.Cmd
	stopVolumes func()
	stopped     bool
}

// StartFlux installs the Flux CRDs and starts source-controller and
// helm-controller, on a cluster started without them (Options.Flux does the
// same at start).
func (c *Cluster) StartFlux(ctx context.Context) error {
	fluxStart := time.Now()
	if err := c.startFlux(ctx); err != nil {
		return fmt.Errorf("start Flux controllers: %w", err)
	}
	fmt.Fprintf(c.log, "Flux controllers ready in %s\n", time.Since(fluxStart).Round(100*time.Millisecond))
	return nil
}

// Scheme knows the types the launcher and the tests use.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, storefleetv1alpha1.AddToScheme,
		helmv2.AddToScheme, sourcev1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// Start builds nothing: it launches a cluster from binaries that `make tools`
// (or Build) produced, and returns once the node is Ready, the default
// StorageClass exists, the Store CRD is established and, with Flux, both
// controllers report ready. On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	tools, err := Locate()
	if err != nil {
		return nil, err
	}
	var node realnode.Config
	if opts.RealNode {
		// Everything the node needs is checked before anything starts.
		if err := realnode.Check(); err != nil {
			return nil, err
		}
		if node, err = nodeConfig(ctx, opts.Log, opts.NodeImages); err != nil {
			return nil, err
		}
		node.Addons.IngressAddr = opts.IngressAddr
	}
	c = &Cluster{Name: opts.Name, Workdir: opts.Workdir, tools: tools, log: opts.Log, realNode: opts.RealNode}
	if c.log == nil {
		c.log = io.Discard
	}
	if c.Name == "" {
		c.Name = "sf-" + randomHex(4)
	}
	if c.Workdir == "" {
		if c.Workdir, err = os.MkdirTemp("", "storefleet-cluster-"); err != nil {
			return nil, err
		}
		c.ownWorkdir = true
	} else if err := os.MkdirAll(c.Workdir, 0o755); err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(c.Workdir, "kubeconfig")
	defer func() {
		if err != nil {
			_ = c.Stop()
			c = nil
		}
	}()

	// kwokctl starts each component detached and exits; becoming their
	// subreaper lets Stop reap them, as PID 1 here does not.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return c, fmt.Errorf("become child subreaper: %w", err)
	}

	// kwokctl picks free ports by probing, as do the Flux listeners: two
	// clusters starting at once (test packages run in parallel) could pick
	// the same port. Starting one at a time across processes rules that out;
	// once started, they run side by side.
	unlock, err := lockStart()
	if err != nil {
		return c, err
	}
	defer func() { unlock() }()

	start := time.Now()
	if err := c.createKwokCluster(ctx); err != nil {
		return c, err
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return c, err
	}
	c.Config.QPS, c.Config.Burst = 200, 400
	if c.Client, err = client.New(c.Config, client.Options{Scheme: Scheme()}); err != nil {
		return c, err
	}
	if err := c.addNode(ctx); err != nil {
		return c, err
	}
	if err := c.addStorageClass(ctx); err != nil {
		return c, err
	}
	if c.stopVolumes, err = startSimulatedVolumes(c.Config, c.log); err != nil {
		return c, fmt.Errorf("start the simulated volume provisioner: %w", err)
	}
	if err := c.InstallCRDs(ctx, storefleetv1alpha1.CRDManifest); err != nil {
		return c, fmt.Errorf("install the Store CRD: %w", err)
	}
	if err := c.waitForDefaultServiceAccount(ctx); err != nil {
		return c, err
	}
	fmt.Fprintf(c.log, "Cluster %s ready in %s (kubeconfig %s)\n", c.Name, time.Since(start).Round(100*time.Millisecond), c.Kubeconfig)
	if opts.RealNode {
		node.Dir, node.Kubeconfig, node.PKIDir, node.Client, node.Log = filepath.Join(c.Workdir, "node"), c.Kubeconfig, c.pkiDir(), c.Client, c.log
		// The node's host-wide lock is taken inside; released by Stop.
		unlock()
		unlock = func() {}
		if c.Node, err = realnode.Start(ctx, node); err != nil {
			return c, fmt.Errorf("start the real node: %w", err)
		}
	}
	if opts.Flux {
		if err := c.StartFlux(ctx); err != nil {
			return c, err
		}
	}
	return c, nil
}

// KubectlBinary is the kubectl built with the control plane.
func (c *Cluster) KubectlBinary() string { return c.tools.Bin("kubectl") }

// pkiDir holds the cluster CA and the admin certificate kwokctl generated.
func (c *Cluster) pkiDir() string { return filepath.Join(c.kwokWorkdir(), "clusters", c.Name, "pki") }

// kwokWorkdir is KWOK_WORKDIR; WorkdirPIDs relies on this layout.
func (c *Cluster) kwokWorkdir() string { return filepath.Join(c.Workdir, "kwok") }

func (c *Cluster) kwokctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, c.tools.Bin("kwokctl"), append([]string{"--name", c.Name}, args...)...)
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+c.kwokWorkdir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kwokctl %s: %w\n%s", strings.Join(args, " "), err, LastLines(out.String(), 40))
	}
	return nil
}

func (c *Cluster) createKwokCluster(ctx context.Context) error {
	cfg, err := kwokctlConfig(c.tools, c.realNode, c.pkiDir())
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(c.Workdir, "kwokctl.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return err
	}
	err = c.kwokctl(ctx, "create", "cluster", "--config", cfgPath, "--kubeconfig", c.Kubeconfig, "--wait", "2m")
	if err != nil {
		return fmt.Errorf("%w%s", err, c.componentLogTails())
	}
	return nil
}

// componentLogTails returns the end of each component's log, for errors.
func (c *Cluster) componentLogTails() string {
	logs, _ := filepath.Glob(filepath.Join(c.kwokWorkdir(), "clusters", c.Name, "logs", "*.log"))
	var b strings.Builder
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		fmt.Fprintf(&b, "\n--- %s\n%s", filepath.Base(l), LastLines(string(data), 15))
	}
	return b.String()
}

func (c *Cluster) addNode(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        NodeName,
		Annotations: map[string]string{kwokNodeAnnotation: "fake"},
		Labels: map[string]string{
			"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			simulatedNodeLabel: "kwok",
		},
	}}
	// Room for a fleet of a few thousand stores' requests (kwok's default
	// 1Ti of memory ran out at about 900 stores of the small plan).
	node.Status.Capacity = corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("10k"), corev1.ResourceMemory: resource.MustParse("16Ti"),
		corev1.ResourcePods: resource.MustParse("1M"), corev1.ResourceEphemeralStorage: resource.MustParse("1Pi"),
	}
	node.Status.Allocatable = node.Status.Capacity
	if err := c.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node: %w", err)
	}
	return poll(ctx, 60*time.Second, "node "+NodeName+" Ready", func() (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return false, err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

func (c *Cluster) addStorageClass(ctx context.Context) error {
	bind := storagev1.VolumeBindingImmediate
	reclaim := corev1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       SimulatedVolumeProvisioner,
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &bind,
	}
	if err := c.Client.Create(ctx, sc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create storage class: %w", err)
	}
	return nil
}

// waitForDefaultServiceAccount waits for the controller-manager to create the
// default ServiceAccount: until then no pod can be created in "default".
func (c *Cluster) waitForDefaultServiceAccount(ctx context.Context) error {
	return poll(ctx, 30*time.Second, "default ServiceAccount", func() (bool, error) {
		err := c.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// InstallCRDs server-side applies the CRDs in a multi-document manifest and
// waits until each is established. (Server-side apply because Flux's
// HelmRelease CRD is too large for the last-applied annotation.)
func (c *Cluster) InstallCRDs(ctx context.Context, manifest []byte) error {
	return InstallCRDs(ctx, c.Client, manifest)
}

// InstallCRDs server-side applies the CRDs of a manifest with cl (any
// cluster, e.g. `storefleet dev --kubeconfig`) and waits until they are
// established.
func InstallCRDs(ctx context.Context, cl client.Client, manifest []byte) error {
	objs, err := manifests.Decode(manifest)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	for _, o := range objs {
		name := o.GetName()
		err := poll(ctx, 30*time.Second, "CRD "+name+" established", func() (bool, error) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := cl.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Apply server-side applies objects with the launcher's field manager.
func (c *Cluster) Apply(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		if err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// Stop stops the Flux controllers and the cluster, reaps every component
// process, and removes a workdir it created. It is safe to call twice.
func (c *Cluster) Stop() error {
	if c == nil || c.stopped {
		return nil
	}
	c.stopped = true
	var errs []error
	// The node first, while the API server still answers its kubelet.
	errs = append(errs, c.Node.Stop())
	if c.stopVolumes != nil {
		c.stopVolumes()
	}
	for _, cmd := range c.controllers {
		errs = append(errs, stopProcess(cmd))
	}
	pids := WorkdirPIDs(c.Workdir)
	if _, err := os.Stat(filepath.Join(c.kwokWorkdir(), "clusters", c.Name)); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		errs = append(errs, c.kwokctl(ctx, "delete", "cluster"))
		cancel()
	}
	for _, pid := range pids {
		errs = append(errs, reap(pid))
	}
	if c.ownWorkdir {
		errs = append(errs, os.RemoveAll(c.Workdir))
	}
	return errors.Join(errs...)
}

// WorkdirPIDs reads the pid files kwokctl wrote for the components of the
// cluster whose workdir this is.
func WorkdirPIDs(workdir string) []int {
	files, _ := filepath.Glob(filepath.Join(workdir, "kwok", "clusters", "*", "pids", "*.pid"))
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ComponentPIDs lists the process ids of the control-plane components and the
// Flux controllers, for tests that check nothing is left running.
func (c *Cluster) ComponentPIDs() []int {
	pids := WorkdirPIDs(c.Workdir)
	for _, cmd := range c.controllers {
		pids = append(pids, cmd.Process.Pid)
	}
	return pids
}

// reap waits for a component kwokctl was asked to stop; one still alive after
// 10 s is killed. A process that is not our child (another cluster's, or one
// already reaped) is only waited for.
func reap(pid int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if wpid == pid || errors.Is(err, unix.ECHILD) && !Alive(pid) {
			return nil
		}
		if time.Now().After(deadline) {
			_ = unix.Kill(pid, unix.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Alive reports whether a process exists and is not a zombie.
func Alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

func stopProcess(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

func poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), lastErr)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, for a
// server that binds it later, often in another process. The port is drawn
// below the kernel's ephemeral range: a port from that range (what listening
// on port 0 hands out) can become the local end of any outgoing connection
// before the server binds it, and the tests open thousands of connections
// while they start servers. It also stays clear of Kubernetes' own fixed
// ports (10248–10259) and the NodePort range (30000–32767).
//
// A port is handed out once a process: a caller's server may bind it only
// after another caller asked (the dev platform draws ten ports before it
// starts its servers), and a second caller given the same port would find it
// taken.
func FreePort() (int, error) {
	lo, hi := 20000, min(30000, ephemeralPortsStart())
	tries := 200
	if hi-lo < 1000 {
		tries = 0 // the ephemeral range starts low: nothing is safe from it
	}
	for range tries {
		port := lo + mrand.IntN(hi-lo)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	handedOut.Store(port, true)
	return port, nil
}

// handedOut holds the ports FreePort returned in this process.
var handedOut sync.Map

// ephemeralPortsStart is the first port the kernel picks for outgoing
// connections (Linux's default when it cannot be read).
func ephemeralPortsStart() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return n
}

func waitHTTPOK(ctx context.Context, url string, timeout time.Duration) error {
	return poll(ctx, timeout, url, func() (bool, error) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockStart takes an exclusive lock shared by every process on the machine
// that starts a local cluster, and returns its release.
func lockStart() (func(), error) {
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(CacheDir(), "cluster-start.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock cluster start: %w", err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
