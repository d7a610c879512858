// Package clusters_test applies clusters/<env> the way `flux bootstrap` does
// — a flux-system GitRepository of the platform repo and a Kustomization of
// ./clusters/<env> — to a local cluster running source-, helm- and
// kustomize-controller, with local Git servers for the platform repo and the
// stores repo, and checks that everything reconciles.
package clusters_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/clusters"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/gitserver"
	"github.com/storefleet/storefleet/test/testenv"
)

const repoRoot = "../.."

var (
	kustomizationGVK = schema.GroupVersionKind{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Kind: "Kustomization"}
	gitRepositoryGVK = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}
	helmReleaseGVK   = schema.GroupVersionKind{Group: "helm.toolkit.fluxcd.io", Version: "v2", Kind: "HelmRelease"}
)

func TestClustersReconcileWithFlux(t *testing.T) {
	for _, env := range clusters.Environments {
		t.Run(env, func(t *testing.T) { testEnvironment(t, env) })
	}
}

func testEnvironment(t *testing.T, env string) {
	ctx := context.Background()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cluster, err := devcluster.Start(startCtx, devcluster.Options{Flux: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	if err := cluster.StartKustomizeController(startCtx); err != nil {
		t.Fatal(err)
	}
	c := cluster.Client

	git, err := gitserver.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer git.Close()
	storesURL, err := git.Init("stores")
	if err != nil {
		t.Fatal(err)
	}
	platformURL, err := git.Init("platform")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := git.Commit("stores", "main", "a store", map[string][]byte{
		"stores/flux-demo.yaml":  []byte("apiVersion: storefleet.dev/v1alpha1\nkind: Store\nmetadata:\n  name: flux-demo\nspec:\n  engine: medusa\n  owner: alice\n"),
		"stores/flux-other.yaml": []byte("apiVersion: storefleet.dev/v1alpha1\nkind: Store\nmetadata:\n  name: flux-other\nspec:\n  engine: medusa\n  owner: bob\n"),
	}); err != nil {
		t.Fatal(err)
	}
	// The platform repo: this repository's chart and clusters/<env> as they
	// are, but for the stores repo's address (the one line a team edits).
	files := tree(t, "charts/storefleet", fmt.Sprintf("clusters/%s", env))
	syncPath := fmt.Sprintf("clusters/%s/stores-sync.yaml", env)
	url := regexp.MustCompile(`(?m)^  url: \S+$`)
	if n := len(url.FindAll(files[syncPath], -1)); n != 1 {
		t.Fatalf("%s: %d url lines, want the stores GitRepository's one", syncPath, n)
	}
	files[syncPath] = url.ReplaceAll(files[syncPath], []byte("  url: "+storesURL))
	if _, err := git.Commit("platform", "main", "storefleet platform", files); err != nil {
		t.Fatal(err)
	}

	// prod reads the stores repo with a deploy token: the one Secret a team
	// creates by hand before bootstrapping (the README says so).
	if env == "prod" {
		mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storefleet-system"}})
		mustCreate(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "stores-repo-auth", Namespace: "storefleet-system"},
			StringData: map[string]string{"username": "flux", "password": "read-only-token"}})
	}
	// What `flux bootstrap git --path=clusters/<env>` leaves in the cluster.
	mustCreate(t, c, object(gitRepositoryGVK, "flux-system", devcluster.FluxNamespace, map[string]any{
		"interval": "1m", "url": platformURL, "ref": map[string]any{"branch": "main"},
	}))
	mustCreate(t, c, object(kustomizationGVK, "flux-system", devcluster.FluxNamespace, map[string]any{
		"interval": "10m", "path": "./clusters/" + env, "prune": true,
		"sourceRef": map[string]any{"kind": "GitRepository", "name": "flux-system"},
	}))

	ready := func(gvk schema.GroupVersionKind, ns, name string) func() (bool, error) {
		return func() (bool, error) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return conditionTrue(u, "Ready"), nil
		}
	}
	describe := func(gvk schema.GroupVersionKind, ns, name string) func() string {
		return func() string {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
				return fmt.Sprintf("%s %s/%s: %v", gvk.Kind, ns, name, err)
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			return fmt.Sprintf("%s %s/%s conditions: %v\n%s", gvk.Kind, ns, name, conds, cluster.LogTail("kustomize-controller", "helm-controller", "source-controller"))
		}
	}
	testenv.Eventually(t, 3*time.Minute, "the flux-system Kustomization (clusters/"+env+") Ready",
		ready(kustomizationGVK, devcluster.FluxNamespace, "flux-system"), describe(kustomizationGVK, devcluster.FluxNamespace, "flux-system"))
	testenv.Eventually(t, 4*time.Minute, "the platform HelmRelease Ready",
		ready(helmReleaseGVK, "storefleet-system", "storefleet"), describe(helmReleaseGVK, "storefleet-system", "storefleet"))
	testenv.Eventually(t, 3*time.Minute, "the stores Kustomization Ready",
		ready(kustomizationGVK, "storefleet-system", "stores"), describe(kustomizationGVK, "storefleet-system", "stores"))

	// The platform as the environment's values say.
	var operator appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: "storefleet-system", Name: "storefleet-operator"}, &operator); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(operator.Spec.Template.Spec.Containers[0].Args, " ")
	if *operator.Spec.Replicas != 2 || !strings.Contains(args, "--environment="+env) || !strings.Contains(args, "--values=/etc/storefleet/store-values/values.yaml") {
		t.Errorf("operator Deployment: %d replicas, args %s", *operator.Spec.Replicas, args)
	}
	if operator.Status.AvailableReplicas != 2 {
		t.Errorf("operator Deployment: %d available (simulated pods), want 2", operator.Status.AvailableReplicas)
	}
	var storeValues corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "storefleet-system", Name: "storefleet-store-values"}, &storeValues); err != nil {
		t.Fatal(err)
	}
	if want, _ := clusters.Values(env); !strings.Contains(storeValues.Data["values.yaml"], "domain: ") || len(want) == 0 {
		t.Errorf("store values ConfigMap: %q", storeValues.Data["values.yaml"])
	}
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: "storefleet-system"}, &ns); err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("platform namespace: %v %v", err, ns.Labels)
	}

	// The stores repo's manifests are Stores, applied by Flux.
	for _, name := range []string{"flux-demo", "flux-other"} {
		var s v1alpha1.Store
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &s); err != nil {
			t.Fatalf("store %s from the stores repo: %v", name, err)
		}
		if s.Labels["kustomize.toolkit.fluxcd.io/name"] != "stores" {
			t.Errorf("store %s labels %v, want Flux's", name, s.Labels)
		}
	}
	// Removing a manifest prunes its Store, and only that one.
	if _, err := git.Commit("stores", "main", "remove flux-other", map[string][]byte{"stores/flux-other.yaml": nil}); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, c, gitRepositoryGVK, "storefleet-system", "stores")
	testenv.Eventually(t, 2*time.Minute, "flux-other pruned", func() (bool, error) {
		requestReconcile(t, c, kustomizationGVK, "storefleet-system", "stores")
		err := c.Get(ctx, client.ObjectKey{Name: "flux-other"}, &v1alpha1.Store{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}, describe(kustomizationGVK, "storefleet-system", "stores"))
	if err := c.Get(ctx, client.ObjectKey{Name: "flux-demo"}, &v1alpha1.Store{}); err != nil {
		t.Errorf("flux-demo after the prune: %v", err)
	}

	// The stores repo cannot grant itself more: a ClusterRoleBinding to
	// cluster-admin pushed below stores/ is refused by the API server (the
	// sync's identity may write Stores only), and the sync says so.
	escalation := []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: stores-repo-escalation\n" +
		"roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\n" +
		"subjects:\n  - kind: ServiceAccount\n    name: default\n    namespace: default\n")
	if _, err := git.Commit("stores", "main", "escalate", map[string][]byte{"stores/rbac/escalation.yaml": escalation}); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, c, gitRepositoryGVK, "storefleet-system", "stores")
	testenv.Eventually(t, 2*time.Minute, "the stores sync refusing the ClusterRoleBinding", func() (bool, error) {
		requestReconcile(t, c, kustomizationGVK, "storefleet-system", "stores")
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(kustomizationGVK)
		if err := c.Get(ctx, client.ObjectKey{Namespace: "storefleet-system", Name: "stores"}, u); err != nil {
			return false, err
		}
		return !conditionTrue(u, "Ready") && strings.Contains(conditionMessage(u, "Ready"), "forbidden"), nil
	}, describe(kustomizationGVK, "storefleet-system", "stores"))
	if err := c.Get(ctx, client.ObjectKey{Name: "stores-repo-escalation"}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the stores repo's ClusterRoleBinding exists (%v): the sync applied more than Stores", err)
	}
}

func conditionMessage(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == typ {
			msg, _ := m["message"].(string)
			return msg
		}
	}
	return ""
}

// tree reads directories of this repository as path → content.
func tree(t *testing.T, dirs ...string) map[string][]byte {
	files := map[string][]byte{}
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			files[filepath.ToSlash(rel)] = data
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func object(gvk schema.GroupVersionKind, name, namespace string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(gvk)
	u.SetName(name)
	u.SetNamespace(namespace)
	return u
}

func mustCreate(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == typ {
			return m["status"] == string(metav1.ConditionTrue)
		}
	}
	return false
}

// requestReconcile asks a Flux object to reconcile now, as `flux reconcile` does.
func requestReconcile(t *testing.T, c client.Client, gvk schema.GroupVersionKind, ns, name string) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetName(name)
	u.SetNamespace(ns)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano)))
	if err := c.Patch(context.Background(), u, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}
