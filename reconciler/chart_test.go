package reconciler_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/clusters"
	"github.com/storefleet/storefleet/internal/manifests"
	"github.com/storefleet/storefleet/reconciler"
	"github.com/storefleet/storefleet/test/testenv"
)

func platformFor(t testing.TB, env string) reconciler.Platform { return testenv.LocalPlatform(t, env) }

// TestChartLintsAndEveryObjectPassesServerSideDryRun renders the store chart
// with each environment's values and plan, and has the real API server
// validate every object (schema, admission, Pod Security "restricted") in a
// namespace labelled restricted.
func TestChartLintsAndEveryObjectPassesServerSideDryRun(t *testing.T) {
	suite(t)
	ctx := context.Background()
	helm := newHelmSDK(t)
	for _, env := range clusters.Environments {
		for _, plan := range []v1alpha1.Plan{v1alpha1.PlanSmall, v1alpha1.PlanMedium, v1alpha1.PlanLarge} {
			t.Run(env+"/"+string(plan), func(t *testing.T) {
				store := newStore("chart-"+env, func(s *v1alpha1.Store) { s.Spec.Plan = plan })
				values := reconciler.ChartValues(store, platformFor(t, env))
				if problems := reconciler.LintChart("../charts/medusa-store", values); len(problems) > 0 {
					t.Fatalf("helm lint: %v", problems)
				}
				ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "dryrun-", Labels: map[string]string{
					"pod-security.kubernetes.io/enforce": "restricted",
				}}}
				if err := cluster.Client.Create(ctx, ns); err != nil {
					t.Fatal(err)
				}
				manifest, err := helm.Render(ns.Name, store.Name, values)
				if err != nil {
					t.Fatalf("render: %v", err)
				}
				objs, err := manifests.Decode([]byte(manifest))
				if err != nil {
					t.Fatal(err)
				}
				// Strict: no key twice in a mapping. The API server takes
				// the last one, but Flux's post-renderer refuses the release.
				for _, doc := range strings.Split(manifest, "\n---") {
					var m map[string]any
					if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
						t.Errorf("rendered document is not strict YAML: %v\n%s", err, doc)
					}
				}
				kinds := map[string]int{}
				for _, o := range objs {
					kinds[o.GetKind()]++
					o.SetNamespace(ns.Name)
					if err := cluster.Client.Create(ctx, o, client.DryRunAll); err != nil {
						t.Errorf("%s %s rejected by the API server: %v", o.GetKind(), o.GetName(), err)
					}
				}
				for kind, n := range map[string]int{"Deployment": 4, "StatefulSet": 1, "Service": 4, "Ingress": 1, "NetworkPolicy": 7, "Job": 1, "PersistentVolumeClaim": 1} {
					if kinds[kind] != n {
						t.Errorf("%d %s objects, want %d", kinds[kind], kind, n)
					}
				}
				// The drift check reads release objects through the cache: a
				// kind the operator does not cache would get an informer of
				// its own, cluster-wide and holding whole objects.
				cached := map[string]bool{}
				for _, gvk := range reconciler.ManagedKinds() {
					cached[gvk.GroupKind().String()] = true
				}
				for _, o := range objs {
					if gk := o.GroupVersionKind().GroupKind().String(); !cached[gk] {
						t.Errorf("the release holds a %s, a kind the operator does not cache", gk)
					}
				}
				checkEnvironment(t, env, objs)
			})
		}
	}
}

// checkEnvironment asserts the environment differences reach the objects.
func checkEnvironment(t *testing.T, env string, objs []*unstructured.Unstructured) {
	t.Helper()
	want := map[string]map[string]string{
		"local": {"class": "local", "storage": "standard", "host": "chart-local.localtest.me", "controller": "local-ingress"},
		"prod":  {"class": "traefik", "storage": "local-path", "host": "chart-prod.stores.example.com", "controller": "traefik"},
	}[env]
	for _, o := range objs {
		switch o.GetKind() {
		case "Ingress":
			class, _, _ := unstructured.NestedString(o.Object, "spec", "ingressClassName")
			rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
			host := rules[0].(map[string]any)["host"]
			_, tls, _ := unstructured.NestedSlice(o.Object, "spec", "tls")
			if class != want["class"] || host != want["host"] || tls != (env == "prod") {
				t.Errorf("ingress class %q host %v tls %v", class, host, tls)
			}
		case "StatefulSet":
			vct, _, _ := unstructured.NestedSlice(o.Object, "spec", "volumeClaimTemplates")
			sc, _, _ := unstructured.NestedString(vct[0].(map[string]any), "spec", "storageClassName")
			if sc != want["storage"] {
				t.Errorf("storage class %q, want %q", sc, want["storage"])
			}
		case "NetworkPolicy":
			data, _ := yaml.Marshal(o.Object)
			if o.GetName() == "allow-ingress-controller" {
				if !strings.Contains(string(data), "app.kubernetes.io/name: "+want["controller"]) {
					t.Errorf("ingress controller selector not %s:\n%s", want["controller"], data)
				}
			}
			// The platform's API pods, and only they, reach the backend for
			// the owner's admin invite.
			if o.GetName() == "platform-api-to-backend" {
				for _, w := range []string{"kubernetes.io/metadata.name: storefleet-system", "app.kubernetes.io/component: api", "port: 9000"} {
					if !strings.Contains(string(data), w) {
						t.Errorf("platform API policy lacks %q:\n%s", w, data)
					}
				}
			}
		}
	}
}

// newHelmSDK is a Helm SDK delivery on the suite's cluster, for rendering.
func newHelmSDK(t testing.TB) *reconciler.HelmSDK { return testenv.NewHelmSDK(t, cluster) }
