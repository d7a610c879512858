package reconciler

import (
	"context"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

func TestOwnsNamespace(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "uid-1", CreationTimestamp: created}}
	labels := storeLabels(s)
	ns := func(labels map[string]string, uid string, at time.Time) *corev1.Namespace {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "store-shop", Labels: labels, CreationTimestamp: metav1.NewTime(at)}}
		if uid != "" {
			n.Annotations = map[string]string{v1alpha1.StoreUIDAnnotation: uid}
		}
		return n
	}
	later, earlier := created.Add(time.Second), created.Add(-time.Hour)
	cases := []struct {
		name string
		ns   *corev1.Namespace
		want bool
	}{
		{"made for this store", ns(labels, "uid-1", later), true},
		{"made for an earlier store of the same name", ns(labels, "uid-0", later), false},
		{"copied labels, prepared before the store existed", ns(labels, "", earlier), false},
		{"made by an operator that did not record UIDs", ns(labels, "", later), true},
		{"made at the same second as the store", ns(labels, "", created.Time), true},
		{"copied labels and a forged UID of another store", ns(labels, "uid-2", later), false},
		{"someone else's", ns(map[string]string{"team": "x"}, "", later), false},
		{"store label without managed-by", ns(map[string]string{v1alpha1.StoreLabel: "shop"}, "uid-1", later), false},
	}
	for _, c := range cases {
		if got := ownsNamespace(c.ns, s); got != c.want {
			t.Errorf("%s: ownsNamespace = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestOwnedBy(t *testing.T) {
	s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "uid-1"}}
	hr := func(refs ...metav1.OwnerReference) *helmv2.HelmRelease {
		return &helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: storeLabels(s), OwnerReferences: refs}}
	}
	ref := func(kind, uid string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: kind, Name: "shop", UID: "uid-x", Controller: ptr.To(controller)}
	}
	own := ref("Store", "", true)
	own.UID = s.UID
	notController := own
	notController.Controller = ptr.To(false)
	other := ref("Store", "", true)
	cases := []struct {
		name string
		hr   *helmv2.HelmRelease
		want bool
	}{
		{"controlled by the store", hr(own), true},
		{"labels only", hr(), false},
		{"another store of the same name", hr(other), false},
		{"owner but not controller", hr(notController), false},
	}
	for _, c := range cases {
		if got := ownedBy(c.hr, s); got != c.want {
			t.Errorf("%s: ownedBy = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestStoreForVolume(t *testing.T) {
	pv := func(ref *corev1.ObjectReference) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{ClaimRef: ref}}
	}
	if got := storeForVolume(context.Background(), pv(&corev1.ObjectReference{Namespace: "store-shop", Name: "data-postgres-0"})); len(got) != 1 || got[0].Name != "shop" {
		t.Errorf("volume of store-shop maps to %v", got)
	}
	for _, p := range []*corev1.PersistentVolume{pv(nil), pv(&corev1.ObjectReference{Namespace: "kube-system", Name: "x"}), pv(&corev1.ObjectReference{Namespace: "store-", Name: "x"})} {
		if got := storeForVolume(context.Background(), p); len(got) != 0 {
			t.Errorf("volume %+v maps to %v, want no store", p.Spec.ClaimRef, got)
		}
	}
}
