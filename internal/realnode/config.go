package realnode

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Fixed facts of the one real node a machine can run. They are host-wide (a
// bridge, cgroups, well-known kubelet ports), which is why only one real node
// runs per machine at a time (see lock.go).
const (
	// NodeName is the real node's name.
	NodeName = "real-0"
	// Label marks the real node; workloads that must really run select it.
	Label = "storefleet.dev/real-node"
	// Taint keeps pods meant for kwok off the real node: only pods that
	// tolerate it (and select Label) run for real.
	Taint = Label + "=true:NoSchedule"
	// PodCIDR is the real node's pod network: apart from the host's address,
	// the service range and kwok's fake pod IPs.
	PodCIDR = "10.244.0.0/24"
	// Gateway is the bridge's address on the pod network; the host reaches
	// pods through it.
	Gateway = "10.244.0.1"
	// ServiceCIDR is the cluster's Service range (the API server's and the
	// controller-manager's --service-cluster-ip-range).
	ServiceCIDR = "10.96.0.0/16"
	// APIServiceIP is the `kubernetes` Service's ClusterIP: the API server's
	// certificate must name it for in-cluster clients (CoreDNS, the ingress controller).
	APIServiceIP = "10.96.0.1"
	// DNSServiceIP is the cluster DNS Service (kube-system/kube-dns).
	DNSServiceIP = "10.96.0.10"
	// ClusterDomain is the DNS suffix of Services.
	ClusterDomain = "cluster.local"
	// Bridge is the Linux bridge the CNI bridge plugin creates.
	Bridge = "sfnode0"
	// PauseImage is the sandbox image, built locally (there is no registry).
	PauseImage = "localhost/pause:3.10"

	kubeletPort       = 10250
	kubeletHealthPort = 10248
	proxyHealthAddr   = "127.0.0.1:10256"
	proxyMetricsAddr  = "127.0.0.1:10249"
)

// layout names every path the node writes under its directory.
type layout struct{ dir string }

func (l layout) path(parts ...string) string {
	return filepath.Join(append([]string{l.dir}, parts...)...)
}
func (l layout) containerdSocket() string { return l.path("containerd", "containerd.sock") }
func (l layout) containerdConfig() string { return l.path("config", "containerd.toml") }
func (l layout) cniConfDir() string       { return l.path("cni", "net.d") }
func (l layout) kubeletRoot() string      { return l.path("kubelet") }
func (l layout) logs() string             { return l.path("logs") }
func (l layout) volumes() string          { return l.path("volumes") }

// containerdConfig renders containerd 2.x's configuration (version 3): every
// directory and socket under the node's own directory, and the settings this
// host needs (see ../shared/real-node.md for the measured reasons).
func containerdConfig(l layout) string {
	return fmt.Sprintf(`# containerd for storefleet's real node; generated, do not edit.
version = 3
root = %[1]q
state = %[2]q
# Not /etc/containerd/conf.d/*.toml (2.x's default): nothing of the host's.
imports = []
# Snapshotters and plugins that cannot work here or are not used.
disabled_plugins = [
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.mount-handler.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %[5]q

  # NRI is on by default in 2.x and listens on /var/run/nri/nri.sock.
  [plugins."io.containerd.nri.v1.nri"]
    disable = true

  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    # Images are imported, never pulled: keep the layers so a re-import is cheap.
    discard_unpacked_layers = false
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = %[6]q

  [plugins."io.containerd.cri.v1.runtime"]
    # Without CAP_SYS_RESOURCE every sandbox fails in runc
    # ("failed to update /proc/self/oom_score_adj: Permission denied").
    restrict_oom_score_adj = true
    # Pod network namespaces under the state dir, not /var/run/netns.
    netns_mounts_under_state_dir = true
    # CDI (on by default in 2.x) watches /etc/cdi and /var/run/cdi; unused.
    enable_cdi = false
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          # cgroup v1 with the cgroupfs driver (the kubelet's cgroupDriver).
          SystemdCgroup = false
          BinaryName = "/usr/sbin/runc"
          # runc's state (default /run/containerd/runc) under our directory.
          Root = %[7]q
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = %[8]q
      max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri"]
    # The streaming server (exec, attach, port-forward) the kubelet proxies.
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`, l.path("containerd", "root"), l.path("containerd", "state"), l.containerdSocket(),
		l.containerdSocket()+".ttrpc", l.path("containerd", "opt"), PauseImage,
		l.path("containerd", "runc"), l.cniConfDir())
}

// cniConfig is the pod network: a bridge with the node as gateway and NAT for
// egress, host-local addresses, and portmap for hostPorts.
func cniConfig(l layout) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "storefleet",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": Bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": l.path("cni", "ipam"),
					"ranges":  []any{[]any{map[string]any{"subnet": PodCIDR, "gateway": Gateway}}},
					"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	}, "", "  ")
}

// kubeletConfig is the KubeletConfiguration for this host: cgroup v1 with
// cgroupfs, no OOM score changes (no CAP_SYS_RESOURCE), webhook authn/z
// against the cluster, image GC off (there is no registry to pull an evicted
// image again), every path under the node's directory.
func kubeletConfig(l layout, hostIP, clientCA string) ([]byte, error) {
	return yaml.Marshal(map[string]any{
		"apiVersion":                  "kubelet.config.k8s.io/v1beta1",
		"kind":                        "KubeletConfiguration",
		"failCgroupV1":                false,
		"cgroupDriver":                "cgroupfs",
		"cgroupsPerQOS":               true,
		"enforceNodeAllocatable":      []string{"pods"},
		"containerRuntimeEndpoint":    "unix://" + l.containerdSocket(),
		"imageServiceEndpoint":        "unix://" + l.containerdSocket(),
		"address":                     hostIP,
		"port":                        kubeletPort,
		"readOnlyPort":                0,
		"healthzBindAddress":          "127.0.0.1",
		"healthzPort":                 kubeletHealthPort,
		"authentication":              map[string]any{"anonymous": map[string]any{"enabled": false}, "webhook": map[string]any{"enabled": true, "cacheTTL": "2m0s"}, "x509": map[string]any{"clientCAFile": clientCA}},
		"authorization":               map[string]any{"mode": "Webhook", "webhook": map[string]any{"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"}},
		"oomScoreAdj":                 0,
		"protectKernelDefaults":       false,
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"evictionHard": map[string]string{
			"memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%",
			"nodefs.inodesFree": "2%", "imagefs.inodesFree": "2%",
		},
		"failSwapOn":                false,
		"podLogsDir":                l.path("logs", "pods"),
		"volumePluginDir":           l.path("kubelet-plugins"),
		"clusterDomain":             ClusterDomain,
		"clusterDNS":                []string{DNSServiceIP},
		"resolvConf":                "/etc/resolv.conf",
		"podCIDR":                   PodCIDR,
		"maxPods":                   110,
		"rotateCertificates":        false,
		"serverTLSBootstrap":        false,
		"registerNode":              true,
		"nodeStatusReportFrequency": "1m0s",
		"nodeStatusUpdateFrequency": "10s",
		"syncFrequency":             "30s",
	})
}

// kubeletArgs are the kubelet's flags (what KubeletConfiguration cannot say).
func kubeletArgs(l layout, hostIP, kubeconfig string) []string {
	return []string{
		"--config=" + l.path("config", "kubelet.yaml"),
		"--kubeconfig=" + kubeconfig,
		"--hostname-override=" + NodeName,
		"--node-ip=" + hostIP,
		"--node-labels=" + Label + "=true",
		"--register-with-taints=" + Taint,
		"--root-dir=" + l.kubeletRoot(),
		"--cert-dir=" + l.path("kubelet-pki"),
		"--v=1",
	}
}

// kubeProxyConfig runs kube-proxy in nftables mode (no IPVS here), leaves the
// host's conntrack sysctls alone and listens on loopback only.
func kubeProxyConfig(kubeconfig string) ([]byte, error) {
	return yaml.Marshal(map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"mode":               "nftables",
		"clientConnection":   map[string]any{"kubeconfig": kubeconfig},
		"hostnameOverride":   NodeName,
		"clusterCIDR":        PodCIDR,
		"detectLocalMode":    "ClusterCIDR",
		"nodePortAddresses":  []string{"primary"},
		"healthzBindAddress": proxyHealthAddr,
		"metricsBindAddress": proxyMetricsAddr,
		"oomScoreAdj":        0,
		"conntrack": map[string]any{
			"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
			"udpTimeout": "0s", "udpStreamTimeout": "0s",
		},
	})
}

// kubeRouterArgs run kube-router as a NetworkPolicy controller only: no
// routing, no service proxy (kube-proxy does that), no listeners (its health
// port would bind every interface).
func kubeRouterArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--hostname-override=" + NodeName,
		"--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
		"--enable-cni=false",
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--metrics-port=0", "--health-port=0",
		"--v=1",
	}
}
