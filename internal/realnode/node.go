// Package realnode runs one real Kubernetes worker node on this machine, next
// to the local control plane's kwok nodes: containerd, the kubelet and
// kube-proxy, a bridge pod network, kube-router enforcing NetworkPolicies,
// CoreDNS and the ingress controller (cmd/localingress) as pods, and volumes
// that are real directories. Pods opt in to it with a toleration of Taint
// and a node selector on Label; everything else stays simulated by kwok.
//
// It changes the host while it runs (a bridge, netfilter rules, cgroups,
// a few sysctls, paths the kubelet insists on) and Stop puts all of it back;
// see ../shared/real-node.md for the measured facts behind each setting.
package realnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Binaries are the programs the node runs, built from their Go modules.
type Binaries struct {
	Kubelet, KubeProxy, Containerd, Ctr, Crictl, KubeRouter string
}

// Config configures a real node.
type Config struct {
	// Dir holds all of the node's state, logs and volumes.
	Dir string
	// Kubeconfig is the cluster's admin kubeconfig; PKIDir holds its CA
	// (ca.crt, ca.key), which signs the node's own identities.
	Kubeconfig, PKIDir string
	// Client is an admin client of the cluster.
	Client client.Client
	Bin    Binaries
	// Import loads the images the node needs (the pause image, the addons',
	// whatever its pods run) into its containerd, given the ctr binary and
	// containerd's address: there is no registry to pull from.
	Import func(ctx context.Context, ctr, address string) error
	// Addons are the DNS and ingress images; see addons.go.
	Addons Addons
	// Log receives progress lines.
	Log io.Writer
	// LockWait bounds the wait for another real node on this machine to stop.
	LockWait time.Duration
}

// Node is a running real node.
type Node struct {
	// HostIP is the node's InternalIP.
	HostIP string
	// IngressURL is where the ingress controller answers on loopback:
	// http://<host>.localhost:<port>/ reaches the Ingress for <host>.
	IngressURL string

	cfg     Config
	l       layout
	lock    *hostLock
	before  hostState
	daemons []*daemon // in start order
	stopFwd func()
	stopPV  func()
	stopped bool
	// left is what Stop found on the host before releasing its lock.
	left []string
}

// Start brings the node up and returns once it is Ready with DNS, network
// policy, ingress and volumes working. On error, what was started is torn
// down again.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = 30 * time.Minute
	}
	hostIP, err := HostIP()
	if err != nil {
		return nil, err
	}
	n = &Node{HostIP: hostIP, cfg: cfg, l: layout{dir: cfg.Dir}}
	lockCtx, cancel := context.WithTimeout(ctx, cfg.LockWait)
	var previous string
	n.lock, previous, err = acquireLock(lockCtx, cfg.Dir, cfg.Log)
	cancel()
	if err != nil {
		return nil, err
	}
	if previous != "" {
		// What could not be removed now is removed by this node's own
		// teardown (it clears every chain and cgroup of a node).
		if err := cleanStale(previous, cfg.Log); err != nil {
			fmt.Fprintf(cfg.Log, "Warning: cleaning up after the previous real node: %v\n", err)
		}
	}
	defer func() {
		if err != nil {
			if serr := n.Stop(); serr != nil {
				err = fmt.Errorf("%w (and the teardown: %v)", err, serr)
			}
			n = nil
		}
	}()
	n.before = captureHost()
	for _, d := range []string{"config", "logs", "logs/pods", "containerd", "cni/net.d", "cni/ipam", "kubelet", "kubelet-pki", "kubelet-plugins", "volumes"} {
		if err := os.MkdirAll(n.l.path(d), 0o755); err != nil {
			return n, err
		}
	}
	if data, err := json.Marshal(n.before); err == nil {
		_ = os.WriteFile(n.l.path("host-before.json"), data, 0o644)
	}
	start := time.Now()
	if err := n.writeConfigs(); err != nil {
		return n, err
	}
	if err := n.startContainerd(ctx); err != nil {
		return n, err
	}
	if err := n.startKubelet(ctx); err != nil {
		return n, err
	}
	fmt.Fprintf(cfg.Log, "Real node %s Ready in %s (containerd, kubelet; host IP %s)\n", NodeName, time.Since(start).Round(100*time.Millisecond), hostIP)
	if err := n.startNetwork(ctx); err != nil {
		return n, err
	}
	if err := n.startAddons(ctx); err != nil {
		return n, err
	}
	fmt.Fprintf(cfg.Log, "Real node services up in %s: kube-proxy, kube-router (NetworkPolicy), CoreDNS, ingress controller (%s), local volumes (StorageClass %s)\n",
		time.Since(start).Round(100*time.Millisecond), n.IngressURL, StorageClass)
	return n, nil
}

func (n *Node) writeConfigs() error {
	server, err := apiServerURL(n.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	for _, id := range []identity{
		{file: n.l.path("config", "kubelet.kubeconfig"), user: "system:node:" + NodeName, groups: []string{"system:nodes"}},
		{file: n.l.path("config", "kube-proxy.kubeconfig"), user: "system:kube-proxy"},
	} {
		if err := writeKubeconfig(n.cfg.PKIDir, server, id); err != nil {
			return err
		}
	}
	files := map[string]func() ([]byte, error){
		"config/containerd.toml":           func() ([]byte, error) { return []byte(containerdConfig(n.l)), nil },
		"cni/net.d/10-storefleet.conflist": func() ([]byte, error) { return cniConfig(n.l) },
		"config/kubelet.yaml": func() ([]byte, error) {
			return kubeletConfig(n.l, n.HostIP, filepath.Join(n.cfg.PKIDir, "ca.crt"))
		},
		"config/kube-proxy.yaml": func() ([]byte, error) {
			return kubeProxyConfig(n.l.path("config", "kube-proxy.kubeconfig"))
		},
	}
	for name, render := range files {
		data, err := render()
		if err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		if err := os.WriteFile(n.l.path(name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) start(name, bin string, args []string, env ...string) (*daemon, error) {
	d, err := startDaemon(n.l, name, bin, args, env...)
	if err != nil {
		return nil, err
	}
	n.daemons = append(n.daemons, d)
	return d, nil
}

func (n *Node) ctr(args ...string) (string, error) {
	return run(n.cfg.Bin.Ctr, append([]string{"--address", n.l.containerdSocket(), "--namespace", "k8s.io"}, args...)...)
}

func (n *Node) startContainerd(ctx context.Context) error {
	// The shim is found next to containerd or on PATH: ours first, so
	// Debian's 1.6 shim is never picked up.
	path := filepath.Dir(n.cfg.Bin.Containerd) + ":" + os.Getenv("PATH")
	d, err := n.start("containerd", n.cfg.Bin.Containerd, []string{"--config", n.l.containerdConfig()}, "PATH="+path)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, "containerd", d, func() error { _, err := n.ctr("version"); return err }); err != nil {
		return err
	}
	if n.cfg.Import != nil {
		if err := n.cfg.Import(ctx, n.cfg.Bin.Ctr, n.l.containerdSocket()); err != nil {
			return fmt.Errorf("import the node's images: %w", err)
		}
	}
	return nil
}

// ContainerdAddress is the socket of the node's containerd, for importing
// more images (pods use imagePullPolicy Never or IfNotPresent).
func (n *Node) ContainerdAddress() string { return n.l.containerdSocket() }

// Ctr is the ctr binary matching the node's containerd.
func (n *Node) Ctr() string { return n.cfg.Bin.Ctr }

// Leftovers lists what the node left on the host (empty: the host is as it
// was before Start). After Stop it is what Stop found while it still held
// the host lock: once released, the next node (another test package's) may
// already be writing the same host paths.
func (n *Node) Leftovers() []string {
	if n.stopped {
		return n.left
	}
	return Leftovers(n.cfg.Dir, n.before)
}

// Images lists the image references containerd holds for the kubelet.
func (n *Node) Images() ([]string, error) {
	out, err := n.ctr("images", "list", "--quiet")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

func (n *Node) startKubelet(ctx context.Context) error {
	// The kubelet acts as system:node:real-0, which the API server's Node
	// authorizer (kwokctl runs --authorization-mode=Node,RBAC) lets manage
	// its own node and the pods bound to it, nothing else.
	d, err := n.start("kubelet", n.cfg.Bin.Kubelet, kubeletArgs(n.l, n.HostIP, n.l.path("config", "kubelet.kubeconfig")))
	if err != nil {
		return err
	}
	return waitFor(ctx, 90*time.Second, "node "+NodeName+" Ready", d, func() error {
		var node corev1.Node
		if err := n.cfg.Client.Get(ctx, client.ObjectKey{Name: NodeName}, &node); err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return errors.New("not Ready yet")
	})
}

func (n *Node) startNetwork(ctx context.Context) error {
	d, err := n.start("kube-proxy", n.cfg.Bin.KubeProxy, []string{"--config=" + n.l.path("config", "kube-proxy.yaml")})
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, "kube-proxy healthz", d, func() error {
		resp, err := http.Get("http://" + proxyHealthAddr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return err
	}
	kr, err := n.start("kube-router", n.cfg.Bin.KubeRouter, kubeRouterArgs(n.cfg.Kubeconfig))
	if err != nil {
		return err
	}
	// kube-router has no health endpoint here (it would bind every
	// interface); its filter chain appearing says the controller runs.
	return waitFor(ctx, 30*time.Second, "kube-router's policy chains", kr, func() error {
		out, err := run("iptables", "-t", "filter", "-S")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "KUBE-ROUTER-FORWARD") {
			return errors.New("no KUBE-ROUTER-FORWARD chain yet")
		}
		return nil
	})
}

// Stop tears the node down in the order it needs and puts the host back as
// it was; it returns an error naming anything it could not remove. It is
// safe to call twice.
func (n *Node) Stop() error {
	if n == nil || n.stopped {
		return nil
	}
	n.stopped = true
	defer n.lock.release()
	var errs []error
	if n.stopFwd != nil {
		n.stopFwd()
	}
	if n.stopPV != nil {
		n.stopPV()
	}
	byName := map[string]*daemon{}
	for _, d := range n.daemons {
		byName[d.name] = d
	}
	// kube-router first, then its chains (it leaves them on SIGTERM).
	byName["kube-router"].stop(10 * time.Second)
	byName["kube-proxy"].stop(10 * time.Second)
	byName["kubelet"].stop(15 * time.Second)
	// Pods the kubelet left: stopped and removed through the CRI, so CNI DEL
	// runs and frees their addresses and NAT rules.
	if d := byName["containerd"]; d != nil && !d.exited() && n.cfg.Bin.Crictl != "" {
		sock := "unix://" + n.l.containerdSocket()
		if _, err := run(n.cfg.Bin.Crictl, "--runtime-endpoint", sock, "--image-endpoint", sock, "--timeout", "30s", "rmp", "--all", "--force"); err != nil {
			errs = append(errs, err)
		}
	}
	byName["containerd"].stop(15 * time.Second)
	errs = append(errs, restoreHost(n.l, n.before, n.cfg.Log)...)
	n.left = Leftovers(n.cfg.Dir, n.before)
	if len(n.left) > 0 {
		errs = append(errs, fmt.Errorf("the real node left behind: %s", strings.Join(n.left, "; ")))
	}
	return errors.Join(errs...)
}

// restoreHost removes what a node whose processes are gone left on the host
// (leftover shims, mounts, the bridge, netfilter state, cgroups, paths) and
// restores the sysctls of before.
func restoreHost(l layout, before hostState, log io.Writer) []error {
	var errs []error
	for _, pid := range processesWith(l.containerdSocket()) {
		// Shims outlive containerd by design; ours are marked by its socket.
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
	for _, m := range mountsUnder(append([]string{l.dir}, outsidePaths...)...) {
		if _, err := run("umount", "-l", m); err != nil {
			errs = append(errs, err)
		}
	}
	if linkExists(Bridge) {
		if _, err := run("ip", "link", "del", Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, cleanNetfilter()...)
	errs = append(errs, cleanNFT(before.NFTTables)...)
	for _, cg := range kubepodsCgroups() {
		errs = append(errs, removeCgroupTree(cg))
	}
	for _, p := range outsidePaths {
		if !before.Paths[p] {
			errs = append(errs, os.RemoveAll(p))
		}
	}
	if restored, err := restoreSysctls(before.Sysctls); err != nil {
		errs = append(errs, err)
	} else if len(restored) > 0 {
		fmt.Fprintf(log, "Restored sysctls: %s\n", strings.Join(restored, ", "))
	}
	return errs
}

// cleanStale tears down what a previous node left when its process died
// without a teardown (kill -9, a crash): its processes, then its host state,
// from the host-before.json in its directory.
func cleanStale(dir string, log io.Writer) error {
	data, err := os.ReadFile(filepath.Join(dir, "host-before.json"))
	if err != nil {
		return nil // nothing recorded: nothing of a node there
	}
	var before hostState
	if err := json.Unmarshal(data, &before); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(dir, "host-before.json"), err)
	}
	if len(Leftovers(dir, before)) == 0 {
		return nil
	}
	fmt.Fprintf(log, "Cleaning up after a real node that stopped without its teardown (%s)\n", dir)
	for _, pid := range processesWith(dir) {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
	time.Sleep(500 * time.Millisecond)
	errs := restoreHost(layout{dir: dir}, before, log)
	_ = os.Remove(filepath.Join(dir, "host-before.json"))
	return errors.Join(errs...)
}

// Leftovers lists what a stopped node left on the host: processes, mounts,
// the bridge, netfilter chains and sets, cgroups, paths and sysctls that
// differ from before. Empty means the host is as it was.
func Leftovers(dir string, before hostState) []string {
	var left []string
	if pids := processesWith(dir); len(pids) > 0 {
		left = append(left, fmt.Sprintf("processes %v", pids))
	}
	if m := mountsUnder(append([]string{dir}, outsidePaths...)...); len(m) > 0 {
		left = append(left, fmt.Sprintf("mounts %v", m))
	}
	if linkExists(Bridge) {
		left = append(left, "link "+Bridge)
	}
	for _, fam := range families {
		for _, table := range tables {
			chains, _ := nodeRules(fam, table)
			for _, c := range chains {
				left = append(left, fmt.Sprintf("%s %s chain %s", fam, table, c))
			}
		}
	}
	for _, set := range kubeRouterSets() {
		left = append(left, "ipset "+set)
	}
	if strings.Contains(strings.Join(nftTables(), "\n"), "kube-proxy") {
		left = append(left, "nft table kube-proxy")
	}
	for _, cg := range kubepodsCgroups() {
		left = append(left, "cgroup "+cg)
	}
	for _, p := range outsidePaths {
		if _, err := os.Lstat(p); err == nil && !before.Paths[p] {
			left = append(left, "path "+p)
		}
	}
	now := readSysctls()
	for k, v := range before.Sysctls {
		if now[k] != v {
			left = append(left, fmt.Sprintf("sysctl %s=%s (was %s)", k, now[k], v))
		}
	}
	return left
}
