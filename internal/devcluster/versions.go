package devcluster

// This file is the one place where the versions of the local control plane live.
// Every binary is built from its Go module through the module proxy (there is no
// Docker here, so no kind and no images); see ../shared/k8s-local.md for why these
// exact versions: they are served by the proxy and build with the machine's Go.

const (
	// KubeVersion is the Kubernetes release the control plane runs.
	KubeVersion = "v1.35.4"
	// EtcdVersion is the etcd release backing the API server.
	EtcdVersion = "3.6.16"
	// KwokVersion is the kwok release simulating the nodes and pods.
	KwokVersion = "v0.8.0"
	// HelmControllerVersion is the Flux helm-controller release.
	HelmControllerVersion = "v1.4.3"
	// GiteaVersion is the forge the pull-request tests and `storefleet dev
	// --forge` run (v1.26.0: the newest whose dependencies the proxy serves).
	GiteaVersion = "v1.26.0"
	// SourceControllerVersion is the Flux source-controller release.
	SourceControllerVersion = "v1.7.3"
	// KustomizeControllerVersion is the Flux kustomize-controller release (of
	// the same Flux release as the two above): it applies clusters/<env> and
	// the stores repo the GitOps way.
	KustomizeControllerVersion = "v1.7.3"

	// The real node's components (kubelet and kube-proxy come with
	// KubeVersion). ContainerdVersion is containerd 2 built from its module:
	// Debian's 1.6 would also work with kubelet 1.35, the last release that
	// supports 1.x.
	ContainerdVersion = "v2.2.9"
	// CoreDNSVersion is the cluster DNS, run as a pod on the real node.
	CoreDNSVersion = "v1.15.0"
	// KubeRouterVersion enforces NetworkPolicies (policy-only mode). It is a
	// local test component, never part of what storefleet ships: flaws are
	// reported against v2.1.0, the only v2 release the proxy serves.
	KubeRouterVersion = "v2.1.0"
	// CRIToolsVersion is crictl, which the teardown uses to remove pods
	// through the CRI (so CNI DEL runs).
	CRIToolsVersion = "v1.34.0"
)

// kubeLDFlags stamps the Kubernetes binaries with their version: without it
// `kubectl version` fails and Helm rejects charts that declare a kubeVersion.
const kubeLDFlags = "-X k8s.io/component-base/version.gitVersion=" + KubeVersion +
	" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=35" +
	" -X k8s.io/client-go/pkg/version.gitVersion=" + KubeVersion +
	" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=35"

// components lists what `Build` produces. Replace lines that a component's own
// go.mod carries are derived from it (see wrapperReplaces); Replace holds only
// the extra pins measured to be needed on top.
var components = []component{
	{
		Name:    "etcd",
		Module:  "go.etcd.io/etcd/server/v3",
		Version: "v" + EtcdVersion,
		// etcd's server module has no main package of its own in the module zip;
		// etcdmain.Main is what the upstream `etcd` command runs.
		Main: `package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
`,
		Binaries: []binary{{Name: "etcd", Package: "."}},
	},
	{
		Name:    "kubernetes",
		Module:  "k8s.io/kubernetes",
		Version: KubeVersion,
		LDFlags: kubeLDFlags,
		Binaries: []binary{
			{Name: "kube-apiserver", Package: "k8s.io/kubernetes/cmd/kube-apiserver"},
			{Name: "kube-controller-manager", Package: "k8s.io/kubernetes/cmd/kube-controller-manager"},
			{Name: "kube-scheduler", Package: "k8s.io/kubernetes/cmd/kube-scheduler"},
			{Name: "kubectl", Package: "k8s.io/kubernetes/cmd/kubectl"},
			// The real node's agents, from the same build as the control plane.
			{Name: "kubelet", Package: "k8s.io/kubernetes/cmd/kubelet"},
			{Name: "kube-proxy", Package: "k8s.io/kubernetes/cmd/kube-proxy"},
		},
	},
	{
		Name:    "kwok",
		Module:  "sigs.k8s.io/kwok",
		Version: KwokVersion,
		Binaries: []binary{
			{Name: "kwok", Package: "sigs.k8s.io/kwok/cmd/kwok"},
			{Name: "kwokctl", Package: "sigs.k8s.io/kwok/cmd/kwokctl"},
		},
		// The default stages ship as YAML in the module; the launcher adds its own.
		Assets: []string{
			"kustomize/stage/node/fast/node-initialize.yaml",
			"kustomize/stage/node/heartbeat/node-heartbeat.yaml",
			"kustomize/stage/pod/fast/pod-ready.yaml",
			"kustomize/stage/pod/fast/pod-complete.yaml",
			"kustomize/stage/pod/fast/pod-delete.yaml",
			"kustomize/stage/volume/fast/pvc-provision.yaml",
			"kustomize/stage/volume/fast/pvc-delete.yaml",
			"kustomize/stage/volume/fast/pv-bind.yaml",
			"kustomize/stage/volume/fast/pv-delete.yaml",
		},
	},
	{
		Name:    "helm-controller",
		Module:  "github.com/fluxcd/helm-controller",
		Version: HelmControllerVersion,
		Binaries: []binary{
			{Name: "helm-controller", Package: "github.com/fluxcd/helm-controller"},
		},
		Assets: []string{"config/crd/bases"},
	},
	{
		Name:    "source-controller",
		Module:  "github.com/fluxcd/source-controller",
		Version: SourceControllerVersion,
		Binaries: []binary{
			{Name: "source-controller", Package: "github.com/fluxcd/source-controller"},
		},
		Assets: []string{"config/crd/bases"},
	},
}

// nodeComponents are the real node's own programs (NodeTools), a set apart
// so that adding them left the control plane's cache valid. Each stamps its
// version where its --version reads it.
var nodeComponents = []component{
	{
		Name:    "containerd",
		Module:  "github.com/containerd/containerd/v2",
		Version: ContainerdVersion,
		LDFlags: "-X github.com/containerd/containerd/v2/version.Version=" + ContainerdVersion,
		Binaries: []binary{
			{Name: "containerd", Package: "github.com/containerd/containerd/v2/cmd/containerd"},
			{Name: "containerd-shim-runc-v2", Package: "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"},
			{Name: "ctr", Package: "github.com/containerd/containerd/v2/cmd/ctr"},
		},
	},
	{
		Name:     "coredns",
		Module:   "github.com/coredns/coredns",
		Version:  CoreDNSVersion,
		Binaries: []binary{{Name: "coredns", Package: "github.com/coredns/coredns"}},
	},
	{
		Name:     "kube-router",
		Module:   "github.com/cloudnativelabs/kube-router/v2",
		Version:  KubeRouterVersion,
		LDFlags:  "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=" + KubeRouterVersion,
		Binaries: []binary{{Name: "kube-router", Package: "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"}},
	},
	{
		Name:     "cri-tools",
		Module:   "sigs.k8s.io/cri-tools",
		Version:  CRIToolsVersion,
		LDFlags:  "-X sigs.k8s.io/cri-tools/pkg/version.Version=" + CRIToolsVersion,
		Binaries: []binary{{Name: "crictl", Package: "sigs.k8s.io/cri-tools/cmd/crictl"}},
	},
}

// gitopsComponents complete Flux for clusters/<env> (GitOpsTools); a set of
// their own, so adding them left the control plane's cache valid.
var gitopsComponents = []component{
	{
		Name:    "kustomize-controller",
		Module:  "github.com/fluxcd/kustomize-controller",
		Version: KustomizeControllerVersion,
		Binaries: []binary{
			{Name: "kustomize-controller", Package: "github.com/fluxcd/kustomize-controller"},
		},
		Assets: []string{"config/crd/bases"},
	},
}

// forgeComponents is the local forge, built on demand (ForgeTools).
var forgeComponents = []component{
	{
		Name:    "gitea",
		Module:  "code.gitea.io/gitea",
		Version: GiteaVersion,
		// Gitea v1.26 reaches SQLite only through the cgo driver.
		Tags: "sqlite sqlite_unlock_notify",
		CGO:  true,
		Binaries: []binary{
			{Name: "gitea", Package: "code.gitea.io/gitea"},
		},
		// Without the bindata tag Gitea reads these from its static root.
		Assets: []string{"options", "templates"},
	},
}
