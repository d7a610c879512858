package realnode

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// DebianPackages are the host packages the real node needs.
const DebianPackages = "runc containernetworking-plugins iptables nftables ipset"

// hostTools are the host programs the node runs or its components call.
var hostTools = []struct{ path, pkg string }{
	{"/usr/sbin/runc", "runc"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/loopback", "containernetworking-plugins"},
	{"/usr/lib/cni/portmap", "containernetworking-plugins"},
	{"/usr/sbin/iptables", "iptables"},
	{"/usr/sbin/nft", "nftables"},
	{"/usr/sbin/ipset", "ipset"},
}

// Check reports why this host cannot run the real node, or nil when it can:
// root, cgroups the kubelet can use, overlayfs, and the Debian packages. The
// error says what is missing and how to get it, for `storefleet dev` to print
// before it falls back to simulated nodes only.
func Check() error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not running as root (the kubelet and containerd need it)")
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		if _, err2 := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err2 != nil {
			problems = append(problems, "no usable cgroup hierarchy (neither cgroup v1 memory nor cgroup v2 under /sys/fs/cgroup)")
		}
	}
	if data, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(data), "overlay") {
		problems = append(problems, "the kernel has no overlay filesystem (containerd's overlayfs snapshotter needs it)")
	}
	var pkgs []string
	for _, t := range hostTools {
		if _, err := os.Stat(t.path); err != nil && !slices.Contains(pkgs, t.pkg) {
			pkgs = append(pkgs, t.pkg)
		}
	}
	if len(pkgs) > 0 {
		problems = append(problems, fmt.Sprintf("missing Debian packages: %s (apt-get install %s)", strings.Join(pkgs, ", "), strings.Join(pkgs, " ")))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("this host cannot run the real node: %s", strings.Join(problems, "; "))
}

// HostIP is the address of the interface that carries the default route: the
// node's InternalIP, where the API server reaches the kubelet and where pods
// reach the API server behind the `kubernetes` Service.
func HostIP() (string, error) {
	// A UDP "connection" only picks the source address; nothing is sent.
	conn, err := net.Dial("udp4", "192.0.2.255:9")
	if err != nil {
		return "", fmt.Errorf("find the host's address (default route): %w", err)
	}
	defer conn.Close()
	ip := conn.LocalAddr().(*net.UDPAddr).IP
	if ip.IsLoopback() || ip.IsUnspecified() {
		return "", errors.New("the host has no non-loopback address for the node")
	}
	return ip.String(), nil
}

// sysctls the kubelet, kube-proxy, kube-router and the bridge plugin may
// change; their values before the node started are restored on Stop.
var sysctls = []string{
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
	"net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.all.route_localnet",
	"net.ipv6.conf.all.forwarding",
	"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables",
	"net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_tcp_timeout_established",
	"net.netfilter.nf_conntrack_tcp_timeout_close_wait", "net.netfilter.nf_conntrack_tcp_be_liberal",
	"net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream",
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

// readSysctls returns the current value of every sysctl that exists here.
func readSysctls() map[string]string {
	values := map[string]string{}
	for _, s := range sysctls {
		if data, err := os.ReadFile(sysctlPath(s)); err == nil {
			values[s] = strings.TrimSpace(string(data))
		}
	}
	return values
}

// restoreSysctls writes back the values of before and lists what it changed.
func restoreSysctls(before map[string]string) (restored []string, err error) {
	var errs []error
	for name, want := range before {
		data, rerr := os.ReadFile(sysctlPath(name))
		if rerr != nil || strings.TrimSpace(string(data)) == want {
			continue
		}
		if werr := os.WriteFile(sysctlPath(name), []byte(want), 0o644); werr != nil {
			errs = append(errs, fmt.Errorf("restore %s=%s: %w", name, want, werr))
			continue
		}
		restored = append(restored, fmt.Sprintf("%s=%s (was %s)", name, want, strings.TrimSpace(string(data))))
	}
	return restored, errors.Join(errs...)
}

// outsidePaths are written by the kubelet or containerd outside the node's
// directory whatever they are told; those that did not exist before are
// removed on Stop.
var outsidePaths = []string{"/var/log/containers", "/var/lib/kubelet", "/run/containerd", "/var/log/pods"}

func existingPaths(paths []string) map[string]bool {
	m := map[string]bool{}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			m[p] = true
		}
	}
	return m
}

// run runs a host command and returns its combined output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
