package devcluster

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/realnode"
)

// FaultLabel, set on a pod template, makes kwok simulate a failure instead of
// a healthy start; the value is one of the Fault constants. It is how the
// operator's diagnosis and failure paths are tested without a container runtime.
const FaultLabel = "storefleet.dev/kwok-fault"

// Simulated pod failures, the values of FaultLabel.
const (
	// FaultCrashLoop: Running, not Ready, containers waiting in CrashLoopBackOff.
	FaultCrashLoop = "crashloop"
	// FaultImagePull: Pending, containers waiting in ImagePullBackOff.
	FaultImagePull = "imagepull"
	// FaultPending: bound to the node, Pending forever in ContainerCreating.
	FaultPending = "pending"
)

//go:embed stages/*.yaml
var faultStages embed.FS

// kwokctlConfig is the kwokctl configuration: the binary runtime on loopback
// with every binary given (so kwokctl never downloads), followed by the stages
// kwok plays. Giving any stage replaces all of kwok's defaults, so the
// defaults shipped in the kwok module come first, adjusted in two ways: the
// healthy pod-ready stage skips pods that carry FaultLabel, and kwok's volume
// stages are left out (SimulatedVolumeProvisioner binds the claims).
//
// With a real node, the API server also serves pods (all interfaces, and a
// certificate naming the `kubernetes` Service's IP), has a client
// certificate for the kubelet (logs, exec), and prefers the node's
// InternalIP; kwok-controller always manages only the nodes annotated as
// fake, so it never takes over the real one.
func kwokctlConfig(t Tools, realNode bool, pkiDir string) ([]byte, error) {
	options := map[string]any{
		"runtime":                     "binary",
		"bindAddress":                 "127.0.0.1",
		"kubeVersion":                 KubeVersion,
		"etcdVersion":                 EtcdVersion,
		"kwokVersion":                 KwokVersion,
		"etcdBinary":                  t.Bin("etcd"),
		"kubeApiserverBinary":         t.Bin("kube-apiserver"),
		"kubeControllerManagerBinary": t.Bin("kube-controller-manager"),
		"kubeSchedulerBinary":         t.Bin("kube-scheduler"),
		"kwokControllerBinary":        t.Bin("kwok"),
		"kubectlBinary":               t.Bin("kubectl"),
		"kubeAuthorization":           true,
		"kubeAdmission":               true,
		"disableQPSLimits":            true,
	}
	// The API server's default service range is a /24: 254 ClusterIPs, fewer
	// than a hundred stores' Services. A /16 leaves room for benchmarks.
	serviceRange := []any{arg("service-cluster-ip-range", realnode.ServiceCIDR)}
	apiserver := serviceRange
	if realNode {
		options["kubeApiserverCertSANs"] = []string{realnode.APIServiceIP}
		apiserver = append(apiserver,
			overridingArg("bind-address", "0.0.0.0"),
			arg("kubelet-client-certificate", filepath.Join(pkiDir, "admin.crt")),
			arg("kubelet-client-key", filepath.Join(pkiDir, "admin.key")),
			// The default order starts with Hostname, and "real-0" resolves nowhere.
			arg("kubelet-preferred-address-types", "InternalIP,Hostname"),
		)
	}
	head, err := yaml.Marshal(map[string]any{
		"apiVersion": "config.kwok.x-k8s.io/v1alpha1",
		"kind":       "KwokctlConfiguration",
		"options":    options,
		"componentsPatches": []any{
			map[string]any{"name": "kube-apiserver", "extraArgs": apiserver},
			map[string]any{"name": "kube-controller-manager", "extraArgs": serviceRange},
			// kwokctl passes --manage-all-nodes=true.
			map[string]any{"name": "kwok-controller", "extraArgs": []any{
				overridingArg("manage-all-nodes", "false"),
				arg("manage-nodes-with-annotation-selector", kwokNodeAnnotation+"=fake"),
			}},
		},
	})
	if err != nil {
		return nil, err
	}
	docs := [][]byte{head}

	for _, c := range components {
		if c.Name != "kwok" {
			continue
		}
		for _, a := range c.Assets {
			if strings.Contains(a, "/stage/volume/") {
				// Volumes come from SimulatedVolumeProvisioner: kwok
				// plays these stages one claim at a time.
				continue
			}
			data, err := os.ReadFile(t.Asset(c.Name, a))
			if err != nil {
				return nil, err
			}
			if strings.HasSuffix(a, "/pod-ready.yaml") {
				if data, err = skipFaultPods(data); err != nil {
					return nil, err
				}
			}
			docs = append(docs, data)
		}
	}
	entries, err := faultStages.ReadDir("stages")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		data, err := faultStages.ReadFile("stages/" + e.Name())
		if err != nil {
			return nil, err
		}
		docs = append(docs, data)
	}
	var out bytes.Buffer
	for _, d := range docs {
		out.WriteString("---\n")
		out.Write(bytes.TrimSpace(d))
		out.WriteString("\n")
	}
	return out.Bytes(), nil
}

func arg(key, value string) map[string]any { return map[string]any{"key": key, "value": value} }

// overridingArg replaces a flag kwokctl sets itself instead of adding one.
func overridingArg(key, value string) map[string]any {
	return map[string]any{"key": key, "value": value, "override": true}
}

// skipFaultPods adds a selector term to kwok's pod-ready stage so that a pod
// labelled with FaultLabel is left to the fault stages.
func skipFaultPods(stage []byte) ([]byte, error) {
	var s map[string]any
	if err := yaml.Unmarshal(stage, &s); err != nil {
		return nil, err
	}
	spec, _ := s["spec"].(map[string]any)
	selector, _ := spec["selector"].(map[string]any)
	if selector == nil {
		return nil, fmt.Errorf("kwok pod-ready stage has no selector")
	}
	exprs, _ := selector["matchExpressions"].([]any)
	selector["matchExpressions"] = append(exprs, map[string]any{
		"cel": map[string]any{
			"expression": fmt.Sprintf("!has(self.metadata.labels) || !(%q in self.metadata.labels)", FaultLabel),
		},
	})
	return yaml.Marshal(s)
}
