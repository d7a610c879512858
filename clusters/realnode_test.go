package clusters_test

import (
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/clusters"
	"github.com/storefleet/storefleet/internal/realnode"
)

// The local environment's stores are served by the embedded cluster's own
// ingress controller: their Ingress class and the chart's policy allowing the
// controller in must name what the real node runs, or every storefront is
// unreachable (the class) or blocked (the policy).
func TestLocalValuesNameTheRealNodesIngressController(t *testing.T) {
	data, err := clusters.Values("local")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Ingress struct {
			ClassName string `json:"className"`
		} `json:"ingress"`
		NetworkPolicy struct {
			IngressController struct {
				NamespaceSelector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"namespaceSelector"`
				PodSelector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"podSelector"`
			} `json:"ingressController"`
		} `json:"networkPolicy"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	ic := v.NetworkPolicy.IngressController
	if v.Ingress.ClassName != realnode.IngressClass ||
		ic.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != realnode.IngressNamespace ||
		ic.PodSelector.MatchLabels["app.kubernetes.io/name"] != realnode.IngressPodLabel {
		t.Errorf("local store values name class %q, controller namespace %v, pods %v; the real node runs class %q in %s, pods app.kubernetes.io/name=%s",
			v.Ingress.ClassName, ic.NamespaceSelector.MatchLabels, ic.PodSelector.MatchLabels, realnode.IngressClass, realnode.IngressNamespace, realnode.IngressPodLabel)
	}
}
