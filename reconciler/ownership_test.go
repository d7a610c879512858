package reconciler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// A namespace labelled as a store's before that Store existed (labels are
// easy to copy) is not adopted, and the store's deletion leaves it alone.
func TestNamespaceWithCopiedLabelsIsNotTakenOver(t *testing.T) {
	suite(t)
	ctx := context.Background()
	const name = "copied-shop"
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.NamespaceFor(name), Labels: map[string]string{
		v1alpha1.StoreLabel: name, v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, "team": "mallory",
	}}}
	if err := cluster.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cluster.Client.Delete(ctx, ns) }()
	// The namespace is older than the Store by at least a second (creation
	// timestamps have a second's resolution).
	time.Sleep(1100 * time.Millisecond)
	createStore(t, newStore(name))
	s := waitPhase(t, name, v1alpha1.PhaseFailed, 30*time.Second)
	if c := condition(s, v1alpha1.NamespaceReadyCondition); c == nil || c.Reason != v1alpha1.ReasonNamespaceConflict || !strings.Contains(c.Message, string(s.UID)) {
		t.Errorf("NamespaceReady = %+v", c)
	}
	if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(ns), ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "" || ns.Annotations[v1alpha1.StoreUIDAnnotation] != "" {
		t.Errorf("the prepared namespace was adopted: labels %v, annotations %v", ns.Labels, ns.Annotations)
	}
	deleteStore(t, name)
	if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(ns), ns); err != nil || !ns.DeletionTimestamp.IsZero() {
		t.Errorf("the prepared namespace was deleted with the store (err %v)", err)
	}
}

// A store's own namespace records the Store's UID.
func TestStoreNamespaceRecordsTheStoreUID(t *testing.T) {
	suite(t)
	const name = "uid-shop"
	createStore(t, newStore(name))
	s := waitPhase(t, name, v1alpha1.PhaseReady, 90*time.Second)
	var ns corev1.Namespace
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: v1alpha1.NamespaceFor(name)}, &ns); err != nil {
		t.Fatal(err)
	}
	if got := ns.Annotations[v1alpha1.StoreUIDAnnotation]; got != string(s.UID) {
		t.Errorf("namespace %s annotation %s = %q, want the Store's UID %s", ns.Name, v1alpha1.StoreUIDAnnotation, got, s.UID)
	}
	deleteStore(t, name)
}

// A deleting store that waits for a volume of its claims is told when the
// volume goes (a watch), without listing every PersistentVolume from the
// API server while it waits.
func TestDeletionWaitsForVolumesWithoutPolling(t *testing.T) {
	suite(t)
	ctx := context.Background()
	const name = "volume-shop"
	createStore(t, newStore(name))
	waitPhase(t, name, v1alpha1.PhaseReady, 90*time.Second)
	// A retained volume still bound to a claim of the store's namespace.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "volume-shop-retained"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/volume-shop-retained"}},
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: v1alpha1.NamespaceFor(name), Name: "data-postgres-0"},
		},
	}
	if err := cluster.Client.Create(ctx, pv); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cluster.Client.Delete(ctx, pv) }()
	if err := cluster.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "deletion waiting for the retained volume", func() (bool, error) {
		s := getStore(t, name)
		c := condition(s, v1alpha1.ReadyCondition)
		return c != nil && strings.Contains(c.Message, "waiting for PersistentVolume "+pv.Name), nil
	})
	lists := volumeLists(t)
	time.Sleep(8 * time.Second)
	if n := volumeLists(t) - lists; n > 1 {
		t.Errorf("the API server served %v LISTs of persistentvolumes in 8 s while one store waited for a volume; want none (the operator's cache)", n)
	}
	if err := cluster.Client.Delete(ctx, pv); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "store gone once its volume is", func() (bool, error) {
		err := cluster.Client.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.Store{})
		return apierrors.IsNotFound(err), err
	})
}

// volumeLists is the API server's count of LIST requests for
// persistentvolumes, from its own metrics.
func volumeLists(t *testing.T) float64 { return apiRequests(t, "LIST", "persistentvolumes") }
