package realnode

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The generated configurations carry the host-specific settings without
// which the node does not start here (see real-node.md).
func TestConfigsCarryTheHostSettings(t *testing.T) {
	l := layout{dir: "/tmp/n"}
	kc, err := kubeletConfig(l, "192.0.2.2", "/pki/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	var k map[string]any
	if err := yaml.Unmarshal(kc, &k); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"failCgroupV1": false, "cgroupDriver": "cgroupfs", "oomScoreAdj": float64(0), "readOnlyPort": float64(0),
		"address": "192.0.2.2", "imageGCHighThresholdPercent": float64(100), "podCIDR": PodCIDR,
		"containerRuntimeEndpoint": "unix:///tmp/n/containerd/containerd.sock",
	} {
		if k[key] != want {
			t.Errorf("kubelet %s = %v, want %v", key, k[key], want)
		}
	}
	if dns, _ := k["clusterDNS"].([]any); len(dns) != 1 || dns[0] != DNSServiceIP {
		t.Errorf("kubelet clusterDNS = %v, want [%s]", k["clusterDNS"], DNSServiceIP)
	}

	cd := containerdConfig(l)
	for _, want := range []string{"restrict_oom_score_adj = true", "SystemdCgroup = false", `sandbox = "localhost/pause:3.10"`, `address = "/tmp/n/containerd/containerd.sock"`, `Root = "/tmp/n/containerd/runc"`, "imports = []"} {
		if !strings.Contains(cd, want) {
			t.Errorf("containerd config lacks %q", want)
		}
	}

	cni, err := cniConfig(l)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(cni, &c); err != nil || len(c.Plugins) != 2 || c.Plugins[0]["bridge"] != Bridge {
		t.Errorf("CNI config = %s (%v)", cni, err)
	}

	args := kubeletArgs(l, "192.0.2.2", "/k")
	for _, want := range []string{"--register-with-taints=" + Taint, "--node-ip=192.0.2.2", "--hostname-override=" + NodeName} {
		if !slices.Contains(args, want) {
			t.Errorf("kubelet args lack %s: %v", want, args)
		}
	}
}

func TestRuleFieldsKeepsQuotedComments(t *testing.T) {
	got := ruleFields(`-A FORWARD -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-FORWARD`)
	want := []string{"-A", "FORWARD", "-m", "comment", "--comment", "kube-router netpol - 4IA2OSFRMVNDXBVV", "-j", "KUBE-ROUTER-FORWARD"}
	if !slices.Equal(got, want) {
		t.Errorf("ruleFields = %q, want %q", got, want)
	}
	if !jumpsToNodeChain(got) {
		t.Error("a jump to KUBE-ROUTER-FORWARD is one of the node's rules")
	}
	cni := ruleFields(`-A POSTROUTING -s 10.244.0.2/32 -m comment --comment "name: \"storefleet\" id: \"2414d7\"" -j CNI-9c7c96fbd9`)
	if want := `name: "storefleet" id: "2414d7"`; len(cni) != 10 || cni[7] != want {
		t.Errorf("ruleFields of a CNI rule = %q, want the comment %q", cni, want)
	}
	if jumpsToNodeChain(ruleFields("-A INPUT -i lo -j ACCEPT")) {
		t.Error("an ACCEPT rule is not the node's")
	}
}

func TestHasRules(t *testing.T) {
	empty := "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n"
	if hasRules(empty) {
		t.Error("a table with empty base chains has no rules")
	}
	if !hasRules(empty[:len(empty)-4] + "\t\tcounter packets 0 bytes 0 accept\n\t}\n}\n") {
		t.Error("a counter rule is a rule")
	}
}
