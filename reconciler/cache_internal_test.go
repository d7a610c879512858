package reconciler

import (
	"context"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Pods, and the release's Services, Ingress and Job, are cached as
// metadata keeping only what is read of them (name, UID, versions, the store
// label the watch maps them by); reads share the cached object.
func TestMetadataOnlyKindsKeepWhatTheOperatorReads(t *testing.T) {
	p := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "medusa-backend-5d8f-x2", GenerateName: "medusa-backend-5d8f-",
		Namespace: "store-shop", UID: "u1", ResourceVersion: "42",
		Labels:          map[string]string{v1alpha1.StoreLabel: "shop", componentLabel: "backend", "pod-template-hash": "5d8f", "app.kubernetes.io/name": "medusa"},
		Annotations:     map[string]string{"kwok.x-k8s.io/node": "fake"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "medusa-backend-5d8f", UID: "rs"}},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}}}
	out, err := metadataTrimmed(p)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*metav1.PartialObjectMetadata)
	want := metav1.ObjectMeta{Name: "medusa-backend-5d8f-x2", Namespace: "store-shop", UID: "u1", ResourceVersion: "42",
		Labels: map[string]string{v1alpha1.StoreLabel: "shop"}}
	if !reflect.DeepEqual(got.ObjectMeta, want) {
		t.Errorf("cached metadata\n got %+v\nwant %+v", got.ObjectMeta, want)
	}
	if _, err := metadataTrimmed("tombstone"); err != nil {
		t.Errorf("a deletion tombstone must pass through: %v", err)
	}
	byKind := map[schema.GroupVersionKind]bool{}
	for o, by := range CacheOptions().ByObject {
		if m, ok := o.(*metav1.PartialObjectMetadata); ok {
			byKind[m.GroupVersionKind()] = by.UnsafeDisableDeepCopy != nil && *by.UnsafeDisableDeepCopy
		}
	}
	for _, gvk := range []schema.GroupVersionKind{corev1.SchemeGroupVersion.WithKind("Pod"), corev1.SchemeGroupVersion.WithKind("Service"),
		networkingv1.SchemeGroupVersion.WithKind("Ingress"), batchv1.SchemeGroupVersion.WithKind("Job")} {
		shared, ok := byKind[gvk]
		if !ok || !shared {
			t.Errorf("%s: cached as metadata %v, read without a copy %v; want both", gvk.Kind, ok, shared)
		}
		if !specTrimmed(gvk) {
			t.Errorf("%s: the drift check would compare the cached metadata as the object", gvk.Kind)
		}
	}
}

// CacheOptions names each kind once: two entries for Pod (one stripping
// managed fields only) left which transform ran to map order, and 100
// stores' pods kept 6.5 MB of specs.
func TestCacheOptionsTrimEachKindOnce(t *testing.T) {
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	seen := map[schema.GroupVersionKind]bool{}
	for o := range CacheOptions().ByObject {
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			t.Fatal(err)
		}
		if seen[gvk] {
			t.Errorf("%s is configured twice: the cache keeps either entry", gvk)
		}
		seen[gvk] = true
		if _, typed := o.(*corev1.Pod); typed {
			t.Error("pods are cached typed: their status and spec are most of the operator's memory a store")
		}
	}
	if !seen[corev1.SchemeGroupVersion.WithKind("Pod")] {
		t.Fatal("no cache entry for pods: the cache would hold every pod of the cluster")
	}
}

// Updates that change only what controllers rewrite with every pod (a
// quota's usage) do not wake the store; any other
// change does, and so does every update of other kinds.
func TestStatusNoiseDoesNotWakeTheStore(t *testing.T) {
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "store-quota", ResourceVersion: "1"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("20")}},
		Status:     corev1.ResourceQuotaStatus{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("20")}},
	}
	used := quota.DeepCopy()
	used.ResourceVersion = "2"
	used.Status.Used = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("3")}
	edited := used.DeepCopy()
	edited.Spec.Hard[corev1.ResourcePods] = resource.MustParse("200")
	unobserved := quota.DeepCopy()
	unobserved.Status.Hard = nil

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "1"}}
	podLater := pod.DeepCopy()
	podLater.ResourceVersion = "2"

	for _, c := range []struct {
		what     string
		old, new client.Object
		wakes    bool
	}{
		{"quota usage changed", quota, used, false},
		{"quota spec edited", used, edited, true},
		{"quota observed by the quota controller", unobserved, quota, true},
		{"pod updated", pod, podLater, true},
	} {
		if got := ignoreStatusNoise.Update(event.UpdateEvent{ObjectOld: c.old, ObjectNew: c.new}); got != c.wakes {
			t.Errorf("%s: wakes the store %v, want %v", c.what, got, c.wakes)
		}
	}
	if used.Status.Used == nil || used.ResourceVersion != "2" {
		t.Error("the predicate changed the cached object it was given")
	}
	// The cache keeps no usage at all; the predicate still tells a
	// resourceVersion-only update (usage dropped by the cache) from an edit.
	cached, _ := quotaWithoutUsage(used.DeepCopy())
	if q := cached.(*corev1.ResourceQuota); q.Status.Used != nil || q.Status.Hard.Pods().String() != "20" || q.Spec.Hard.Pods().String() != "20" {
		t.Errorf("the cached quota keeps its usage or lost its limits: %+v", q)
	}
	if ignoreStatusNoise.Update(event.UpdateEvent{ObjectOld: quota, ObjectNew: cached.(client.Object)}) {
		t.Error("a quota whose cached copy changed in its resourceVersion only wakes the store")
	}
}

// The cache keeps of a workload its metadata only — what the drift check
// reads, labels and annotations included — and shares it with readers;
// health and the plan read workloads live (workloadReadings).
func TestCachedWorkloadKeepsWhatTheDriftCheckReads(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "medusa-backend", GenerateName: "x-", UID: "u1", ResourceVersion: "7", Generation: 3,
		Labels:          map[string]string{v1alpha1.StoreLabel: "shop", "app": "x"},
		Annotations:     map[string]string{helmReleaseAnnotation: "shop", "deployment.kubernetes.io/revision": "2"},
		OwnerReferences: []metav1.OwnerReference{{Name: "owner"}},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "helm"}}}
	out, err := workloadMetadata(&metav1.PartialObjectMetadata{ObjectMeta: *meta.DeepCopy()})
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*metav1.PartialObjectMetadata)
	want := *meta.DeepCopy()
	want.GenerateName, want.OwnerReferences, want.ManagedFields = "", nil, nil
	if !reflect.DeepEqual(got.ObjectMeta, want) {
		t.Errorf("cached workload metadata\n got %+v\nwant %+v", got.ObjectMeta, want)
	}
	if verifiedAs(&appsv1.Deployment{ObjectMeta: meta}) != verifiedAs(got) {
		t.Error("a workload found matching live would not match its cached metadata: every drift check would read it live")
	}
	if _, err := workloadMetadata("tombstone"); err != nil {
		t.Errorf("a deletion tombstone must pass through: %v", err)
	}
	shared := map[schema.GroupVersionKind]bool{}
	for o, by := range CacheOptions().ByObject {
		switch o.(type) {
		case *appsv1.Deployment, *appsv1.StatefulSet:
			t.Errorf("%T cached typed: a rollout decodes the whole object a dozen times", o)
		case *metav1.PartialObjectMetadata:
			shared[o.GetObjectKind().GroupVersionKind()] = by.UnsafeDisableDeepCopy != nil && *by.UnsafeDisableDeepCopy
		}
	}
	for _, gvk := range []schema.GroupVersionKind{deploymentGVK, statefulSetGVK} {
		if !shared[gvk] {
			t.Errorf("%s: not cached as metadata read without a copy", gvk.Kind)
		}
	}
}

// A release's NetworkPolicies are cached without their specs, which only
// the drift check reads (live); the operator's own default-deny policy,
// applied from the cache, keeps its spec.
func TestCachedReleaseObjectsKeepNoSpec(t *testing.T) {
	owned := metav1.ObjectMeta{Name: "medusa-backend", Annotations: map[string]string{helmReleaseAnnotation: "shop"},
		Labels:        map[string]string{v1alpha1.StoreLabel: "shop", "app.kubernetes.io/name": "medusa", "helm.sh/chart": "store-0.1.0"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "helm"}}}
	pol := &networkingv1.NetworkPolicy{ObjectMeta: owned, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	deny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: denyPolicyName}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}}
	for _, o := range []client.Object{pol, deny} {
		if _, err := releaseSpecDropped(o); err != nil {
			t.Fatal(err)
		}
		if o.GetManagedFields() != nil {
			t.Errorf("%s kept its managed fields", o.GetName())
		}
	}
	if pol.Spec.PolicyTypes != nil {
		t.Errorf("a release policy kept its spec: %+v", pol.Spec)
	}
	if pol.Name != "medusa-backend" || !reflect.DeepEqual(pol.Labels, map[string]string{v1alpha1.StoreLabel: "shop"}) || pol.Annotations != nil {
		t.Errorf("the policy keeps metadata nothing reads, or lost its name or store label (the watch maps it by): %+v", pol.ObjectMeta)
	}
	if len(deny.Spec.PolicyTypes) != 1 {
		t.Error("the operator's own default-deny policy lost its spec: it is applied from the cache")
	}
	for _, gvk := range []schema.GroupVersionKind{networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"), appsv1.SchemeGroupVersion.WithKind("Deployment"),
		appsv1.SchemeGroupVersion.WithKind("StatefulSet"), corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim")} {
		if !specTrimmed(gvk) {
			t.Errorf("the drift check would compare a cached %s without its spec", gvk.Kind)
		}
	}
	if specTrimmed(corev1.SchemeGroupVersion.WithKind("Secret")) {
		t.Error("a kind cached whole is read live by every drift check")
	}
	if _, err := releaseSpecDropped("tombstone"); err != nil {
		t.Errorf("a deletion tombstone must pass through: %v", err)
	}
}

// A drift check trusts a workload written only in its status, and nothing
// else that was written since it was found matching.
func TestVerifiedObjectStillMatchesOnlyUnchangedSpecs(t *testing.T) {
	deployment := appsv1.SchemeGroupVersion.WithKind("Deployment")
	service := corev1.SchemeGroupVersion.WithKind("Service")
	found := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "medusa-backend", UID: "u1", ResourceVersion: "10", Generation: 2,
		Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"meta.helm.sh/release-name": "store"}}}
	v := verifiedAs(found)
	edit := func(f func(*appsv1.Deployment)) *appsv1.Deployment {
		d := found.DeepCopy()
		d.ResourceVersion = "11"
		f(d)
		return d
	}
	for _, tc := range []struct {
		name   string
		cached *appsv1.Deployment
		gvk    schema.GroupVersionKind
		want   bool
	}{
		{"unwritten", found, deployment, true},
		{"its status written (a rollout)", edit(func(*appsv1.Deployment) {}), deployment, true},
		{"its spec written", edit(func(d *appsv1.Deployment) { d.Generation = 3 }), deployment, false},
		{"a label edited", edit(func(d *appsv1.Deployment) { d.Labels["app"] = "y" }), deployment, false},
		{"an annotation added", edit(func(d *appsv1.Deployment) { d.Annotations["x"] = "y" }), deployment, false},
		{"deleted and made again", edit(func(d *appsv1.Deployment) { d.UID = "u2" }), deployment, false},
		{"a kind whose generation ignores its spec (a Service), written", edit(func(*appsv1.Deployment) {}), service, false},
	} {
		if got := v.stillMatches(tc.cached, tc.gvk); got != tc.want {
			t.Errorf("%s: still matches = %v, want %v", tc.name, got, tc.want)
		}
	}
	if (verifiedObject{}).stillMatches(found, deployment) {
		t.Error("an object never found matching matched")
	}
}

// The cache keeps of a Store what its readers there use — the watch's
// predicates (metadata), the phase metric and the Git reporter (phase,
// conditions, URLs) — and not its activity ring or inventory, most of a
// Store's size; a reconcile reads the whole Store from the API server.
func TestCachedStoreKeepsWhatItsReadersUse(t *testing.T) {
	s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", Generation: 2, Labels: map[string]string{"team": "a"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "storefleet-api"}}},
		Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa},
		Status: v1alpha1.StoreStatus{Phase: v1alpha1.PhaseReady,
			Conditions:  []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Message: "ready"}},
			URLs:        &v1alpha1.StoreURLs{Storefront: "http://shop.localtest.me"},
			ActivityLog: []v1alpha1.ActivityEntry{{Event: v1alpha1.EventDeleted, Message: "x"}},
			Inventory:   []v1alpha1.InventoryEntry{{APIVersion: "v1", Kind: "Service", Name: "medusa-backend"}}}}
	out, err := storeWithoutHistory(s)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1alpha1.Store)
	if got.Status.ActivityLog != nil || got.Status.Inventory != nil || got.ManagedFields != nil {
		t.Errorf("the cache keeps the ring, inventory or managed fields: %+v", got.Status)
	}
	if got.Generation != 2 || got.Labels["team"] != "a" || got.Spec.Engine != v1alpha1.EngineMedusa || got.Status.Phase != v1alpha1.PhaseReady ||
		len(got.Status.Conditions) != 1 || got.Status.URLs == nil || got.Status.URLs.Storefront == "" {
		t.Errorf("lost what the cache's readers use: %+v", got)
	}
	if _, err := storeWithoutHistory("tombstone"); err != nil {
		t.Errorf("a deletion tombstone must pass through: %v", err)
	}
}

// Of a claim the cache keeps what health reads (its phase, how old it is);
// of a volume, the claim it is bound to (what a deleting store waits for).
func TestCachedVolumesKeepTheirPhaseAndClaim(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-time.Hour))
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-postgres-0", CreationTimestamp: created,
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}
	if _, err := claimPhaseOnly(pvc); err != nil {
		t.Fatal(err)
	}
	if pvc.ManagedFields != nil || pvc.Spec.AccessModes != nil || pvc.Status.AccessModes != nil {
		t.Errorf("the claim kept more than its phase: %+v", pvc)
	}
	if pvc.Status.Phase != corev1.ClaimPending || !pvc.CreationTimestamp.Equal(&created) || pvc.Name != "data-postgres-0" {
		t.Errorf("the claim lost what health reads: %+v", pvc)
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"},
		Spec: corev1.PersistentVolumeSpec{Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "store-shop", Name: "data-postgres-0", UID: "u"}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound, Message: "bound"}}
	if _, err := volumeClaimOnly(pv); err != nil {
		t.Fatal(err)
	}
	if pv.Spec.Capacity != nil || pv.Status.Message != "" {
		t.Errorf("the volume kept more than its claim: %+v", pv)
	}
	if got := volumeClaimNamespace(pv); len(got) != 1 || got[0] != "store-shop" || pv.Spec.ClaimRef.Name != "data-postgres-0" {
		t.Errorf("the volume lost its claim: %+v", pv.Spec.ClaimRef)
	}
	if got := storeForVolume(context.Background(), pv); len(got) != 1 || got[0].Name != "shop" {
		t.Errorf("the volume maps to %v, want store shop", got)
	}
	for _, f := range []toolscache.TransformFunc{claimPhaseOnly, volumeClaimOnly} {
		if _, err := f("tombstone"); err != nil {
			t.Errorf("a deletion tombstone must pass through: %v", err)
		}
	}
}
