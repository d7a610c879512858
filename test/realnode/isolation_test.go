package realnode_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/realnode"
	"github.com/storefleet/storefleet/test/testenv"
)

// Isolation is proven by traffic: two stores provisioned by the real
// operator (its default-deny policy and the store chart's allows, with the
// local environment's ingress selector), and probe pods on the real node in
// their namespaces carrying the chart's component labels. The allowed paths
// answer; everything else gets no reply from the application.
func TestStoreIsolationByTraffic(t *testing.T) {
	ctx := context.Background()
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storefleet-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	op, err := testenv.StartOperator(storefleet, cluster, workdir, "--delivery", "helm", "--metrics-addr", "0", "--chart-addr", "0", "--git-webhook-addr", "0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Stop)
	for _, name := range []string{"iso-a", "iso-b"} {
		create(t, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "alice"}})
	}
	for _, ns := range []string{"store-iso-a", "store-iso-b"} {
		testenv.Eventually(t, 2*time.Minute, "the operator's and the chart's policies in "+ns, func() (bool, error) {
			var list networkingv1.NetworkPolicyList
			if err := cluster.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return false, err
			}
			names := map[string]bool{}
			for _, p := range list.Items {
				names[p.Name] = true
			}
			return len(list.Items) >= 6 && names["allow-ingress-controller"] && names["medusa-to-database"], nil
		}, func() string { return "operator log:\n" + tail(op.Log, 30) })
	}

	component := func(store, c string) map[string]string {
		return map[string]string{
			"app.kubernetes.io/name": "medusa-store", "app.kubernetes.io/instance": store,
			"app.kubernetes.io/component": c, "storefleet.dev/probe": c,
		}
	}
	ports := []string{"9000", "5432", "8000"}
	serve := func(ns, name string, labels map[string]string) *corev1.Pod {
		return probePod(ns, "probe-"+name, labels, append([]string{"serve", name}, ports...)...)
	}
	front := serve("store-iso-a", "a-storefront", component("iso-a", "storefront"))
	back := serve("store-iso-a", "a-backend", component("iso-a", "backend"))
	db := serve("store-iso-a", "a-database", component("iso-a", "database"))
	stranger := serve("store-iso-a", "a-stranger", map[string]string{"storefleet.dev/probe": "stranger"})
	otherDB := serve("store-iso-b", "b-database", component("iso-b", "database"))
	runPods(t, front, back, db, stranger, otherDB)
	url := func(p *corev1.Pod, port string) string { return fmt.Sprintf("http://%s:%s/", podIP(t, p), port) }

	t.Run("allowed paths answer", func(t *testing.T) {
		expectReply(t, front, url(back, "9000"), "a-backend")
		expectReply(t, back, url(db, "5432"), "a-database")
		// DNS egress: the storefront resolves the cluster's names (a reply
		// from the API server's Service is not allowed, but the name is).
		if out, err := kubectl("exec", "-n", "store-iso-a", front.Name, "--", "getent", "hosts", "kube-dns.kube-system.svc.cluster.local"); err != nil || !strings.Contains(out, realnode.DNSServiceIP) {
			t.Fatalf("DNS from a store pod: %q (%v)", out, err)
		}
	})
	t.Run("the neighbours it may not call", func(t *testing.T) {
		expectRefused(t, front, url(db, "5432"))      // storefront → database
		expectRefused(t, front, url(back, "8000"))    // storefront → backend off its port
		expectRefused(t, stranger, url(back, "9000")) // an unknown pod → backend
		expectRefused(t, db, url(back, "9000"))       // database → backend (no egress)
	})
	t.Run("another store's database", func(t *testing.T) {
		expectRefused(t, back, url(otherDB, "5432"))
		expectRefused(t, otherDB, url(db, "5432"))
	})
	t.Run("ingress controller reaches the storefront only", func(t *testing.T) {
		for _, p := range []*corev1.Pod{front, stranger} {
			name := strings.TrimPrefix(p.Name, "probe-")
			create(t, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "store-iso-a", Name: p.Name},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"storefleet.dev/probe": p.Labels["storefleet.dev/probe"]},
					Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8000)}}},
			})
			pathType := networkingv1.PathTypePrefix
			create(t, &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Namespace: "store-iso-a", Name: p.Name},
				Spec: networkingv1.IngressSpec{
					IngressClassName: ptr.To(realnode.IngressClass),
					Rules: []networkingv1.IngressRule{{Host: name + ".localhost", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{
							Service: &networkingv1.IngressServiceBackend{Name: p.Name, Port: networkingv1.ServiceBackendPort{Number: 80}},
						}}},
					}}}},
				},
			})
		}
		expectIngress(t, "a-storefront.localhost", "netprobe a-storefront")
		url := strings.Replace(cluster.Node.IngressURL, "localhost", "127.0.0.1", 1) + "/"
		for i := 0; i < 3; i++ {
			if got := ingressGet("a-stranger.localhost", url); strings.HasPrefix(got, "netprobe") {
				t.Fatalf("the ingress controller reached a pod the chart does not expose: %q", got)
			}
		}
	})
}

// tail is the end of a log file, for failure messages.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
