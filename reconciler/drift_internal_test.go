package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

const driftManifest = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-backend}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-storefront}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: v1
kind: Service
metadata: {name: medusa-backend}
spec: {ports: [{port: 9000}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: medusa-backend}
spec: {replicas: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: medusa-storefront}
spec: {replicas: 1}
`

// A store's first drift check after the operator starts compares every
// object the cache holds without its spec, read from the API server: one
// LIST for each kind with several such objects, a GET for a kind with one.
// What is deleted or edited is found as before.
func TestFirstDriftCheckListsEachTrimmedKindOnce(t *testing.T) {
	const ns = "store-shop"
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	policy := func(name string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	}
	deployment := func(name string, replicas int32) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}}
	}
	// allow-storefront was deleted; someone scaled the storefront to 3.
	objects := func() []client.Object {
		return []client.Object{policy("allow-backend"),
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "medusa-backend"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 9000}}}},
			deployment("medusa-backend", 1), deployment("medusa-storefront", 3)}
	}
	live := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects()...).Build()
	// The informer cache holds the same objects (at the same resourceVersions).
	cached := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects()...).Build()
	var requests []string
	reader := interceptor.NewClient(live, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			requests = append(requests, "GET "+key.Name)
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			requests = append(requests, fmt.Sprintf("LIST %T", list))
			return c.List(ctx, list, opts...)
		},
	})
	r := &StoreReconciler{Client: cached, APIReader: reader}
	sc := &scope{store: &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "u1"}}, namespace: ns,
		release: &ReleaseState{Manifest: driftManifest, Status: v1alpha1.HelmDeployed}}
	view, err := r.releaseView(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	// The view holds the pool's strings, not the parsed manifest's: the
	// namespace, kinds and versions its objects repeat are one copy each.
	seen := map[string]*byte{}
	for _, o := range view.objects {
		for _, str := range []string{o.gvk.Kind, o.gvk.Version, o.key.Namespace, o.key.Name} {
			if p, ok := seen[str]; ok && p != unsafe.StringData(str) {
				t.Errorf("the view of %s keeps a copy of its own of %q", o.key.Name, str)
			}
			seen[str] = unsafe.StringData(str)
		}
	}
	todo, err := r.unverified(context.Background(), view)
	if err != nil {
		t.Fatal(err)
	}
	drifted, changed, err := r.compareRelease(context.Background(), sc, view, todo)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(drifted)
	if len(drifted) != 2 || !strings.HasPrefix(drifted[0], "Deployment medusa-storefront changed (spec.replicas") ||
		drifted[1] != "NetworkPolicy allow-storefront deleted" {
		t.Errorf("drift found: %q", drifted)
	}
	if len(changed) != 1 || changed[0].GetName() != "medusa-storefront" {
		t.Errorf("edited objects handed to the repair: %v", changed)
	}
	if len(requests) != 3 || strings.Count(strings.Join(requests, ","), "LIST") != 2 || !slices.Contains(requests, "GET medusa-backend") {
		t.Errorf("live requests %q, want a LIST of the NetworkPolicies, a LIST of the Deployments and a GET of the one Service", requests)
	}
	// The matching objects are remembered: the next check reads nothing.
	requests = nil
	view, _ = r.releaseView(context.Background(), sc)
	if todo, _ := r.unverified(context.Background(), view); len(todo) != 2 {
		t.Errorf("after the check %d objects are still to compare, want the 2 that drifted", len(todo))
	}
	if len(requests) != 0 {
		t.Errorf("the quick path read %q live", requests)
	}
}

// The first check after an install compares every object, with the
// manifest the install had: the memo, which keeps no manifests, is not made
// to read it back from Helm's storage. Once every object was found as the
// release says, the view lets the manifest go.
func TestFirstCheckAfterAnInstallReadsNoManifestBack(t *testing.T) {
	const ns = "store-shop"
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	policy := func(name string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	}
	deployment := func(name string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)}}
	}
	objects := func() []client.Object {
		return []client.Object{policy("allow-backend"), policy("allow-storefront"),
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "medusa-backend"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 9000}}}},
			deployment("medusa-backend"), deployment("medusa-storefront")}
	}
	r := &StoreReconciler{
		Client:    fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects()...).Build(),
		APIReader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects()...).Build(),
	}
	store := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "u1"}}
	ctx := context.Background()
	installed := &scope{store: store, namespace: ns, release: &ReleaseState{Manifest: driftManifest, Status: v1alpha1.HelmDeployed, Action: "install"}}
	if _, err := r.releaseView(ctx, installed); err != nil {
		t.Fatal(err)
	}
	// The next passes get the release from the memo, without its manifest.
	reads := 0
	memorised := func() *scope {
		m := newMemoEntry(*installed.release)
		memo := &releaseMemo{stored: func(context.Context, string, string, int) (string, error) {
			reads++
			return driftManifest, nil
		}}
		s := memo.release(ns, "shop", m)
		return &scope{store: store, namespace: ns, release: &s}
	}
	sc := memorised()
	view, err := r.releaseView(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	todo, err := r.unverified(ctx, view)
	if err != nil {
		t.Fatal(err)
	}
	if len(todo) != 5 {
		t.Fatalf("the first check compares %d objects, want all 5", len(todo))
	}
	drifted, _, err := r.compareRelease(ctx, sc, view, todo)
	if err != nil || len(drifted) != 0 {
		t.Fatalf("drift %q, %v; want none", drifted, err)
	}
	if reads != 0 {
		t.Errorf("the first check read the manifest back from Helm's storage %d times", reads)
	}
	sc = memorised()
	if view, _ = r.releaseView(ctx, sc); view.text != "" || sc.release.Manifest != "" {
		t.Error("the view keeps the manifest after every object was found as it says")
	}
	if todo, _ := r.unverified(ctx, view); len(todo) != 0 || reads != 0 {
		t.Errorf("an unchanged store's check compares %d objects and reads the manifest %d times; want none", len(todo), reads)
	}
}
