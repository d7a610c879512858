package reconciler

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Two objects (here Secrets) decoded from the API server each bring their own copy of
// every label, annotation, namespace and owner string; once cached they
// share one, and read exactly as before.
func TestCachedObjectsShareTheirMetadataStrings(t *testing.T) {
	var transform func(any) (any, error)
	for o, by := range CacheOptions().ByObject {
		if _, ok := o.(*corev1.Secret); ok {
			transform = by.Transform
		}
	}
	if transform == nil {
		t.Fatal("no cache entry for Secrets")
	}
	decoded := func(store string) *corev1.Secret {
		d := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Namespace: "store-" + store, Name: "store-credentials",
			Labels:          map[string]string{"storefleet.dev/store": store, "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "medusa-store-0.4.0"},
			Annotations:     map[string]string{"meta.helm.sh/release-name": store, "meta.helm.sh/release-namespace": "store-" + store},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "storefleet.dev/v1alpha1", Kind: "Store", Name: store, UID: "u"}},
		}}
		// A JSON round trip allocates every string anew, as a watch does.
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var out corev1.Secret
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return &out
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	a, b := decoded("shop"), decoded("shop")
	if same(a.Labels["helm.sh/chart"], b.Labels["helm.sh/chart"]) {
		t.Fatal("the decoded copies already share their strings: the test shows nothing")
	}
	before := a.ObjectMeta.DeepCopy()
	for _, d := range []*corev1.Secret{a, b} {
		if _, err := transform(d); err != nil {
			t.Fatal(err)
		}
	}
	before.ManagedFields = nil
	if !reflect.DeepEqual(&a.ObjectMeta, before) {
		t.Errorf("metadata changed in the cache:\n got %+v\nwant %+v", a.ObjectMeta, *before)
	}
	for what, pair := range map[string][2]string{
		"label value":      {a.Labels["helm.sh/chart"], b.Labels["helm.sh/chart"]},
		"store label":      {a.Labels["storefleet.dev/store"], b.Labels["storefleet.dev/store"]},
		"annotation value": {a.Annotations["meta.helm.sh/release-namespace"], b.Annotations["meta.helm.sh/release-namespace"]},
		"namespace":        {a.Namespace, b.Namespace},
		"name":             {a.Name, b.Name},
		"owner kind":       {a.OwnerReferences[0].Kind, b.OwnerReferences[0].Kind},
	} {
		if !same(pair[0], pair[1]) {
			t.Errorf("the two cached objects hold separate copies of their %s %q", what, pair[0])
		}
	}
	for k := range a.Labels {
		for k2 := range b.Labels {
			if k == k2 && !same(k, k2) {
				t.Errorf("label key %q is held twice", k)
			}
		}
	}
}

// The pool never grows past its bound: full, it starts afresh, and what it
// handed out stays as it was.
func TestStringPoolIsBounded(t *testing.T) {
	p := newStringPool(4)
	var got []string
	for i := range 10 {
		got = append(got, p.shared(fmt.Sprintf("store-%d", i)))
		if len(p.strings) > 4 {
			t.Fatalf("the pool holds %d strings, its bound is 4", len(p.strings))
		}
	}
	for i, s := range got {
		if s != fmt.Sprintf("store-%d", i) {
			t.Errorf("string %d reads %q", i, s)
		}
	}
	long := string(make([]byte, maxPooledLen+1))
	p.shared(long)
	if _, ok := p.strings[long]; ok {
		t.Error("a long string was pooled")
	}
}

// Objects whose labels (or annotations) are the same set share one map; a
// different set, or one whose hash another set holds, keeps its own, and
// every object reads exactly its own labels.
func TestCachedObjectsShareEqualLabelSets(t *testing.T) {
	p := newStringPool(16)
	decoded := func(m map[string]string) map[string]string { return maps.Clone(m) }
	policy := map[string]string{"storefleet.dev/store": "shop", "app.kubernetes.io/part-of": "storefleet", "helm.sh/chart": "medusa-store-0.4.0"}
	a, b := p.sharedSet(decoded(policy)), p.sharedSet(decoded(policy))
	if reflect.ValueOf(a).UnsafePointer() != reflect.ValueOf(b).UnsafePointer() {
		t.Error("two objects with the same labels hold two maps")
	}
	other := decoded(policy)
	other["app.kubernetes.io/component"] = "backend"
	c := p.sharedSet(other)
	if reflect.ValueOf(c).UnsafePointer() == reflect.ValueOf(a).UnsafePointer() || !maps.Equal(c, other) || !maps.Equal(a, policy) {
		t.Errorf("different label sets mixed up: %v %v", a, c)
	}
	// A set whose hash the pool holds for another set is not taken for it.
	clash := map[string]string{"storefleet.dev/store": "other"}
	p.sets[setHash(clash)] = policy
	if got := p.sharedSet(decoded(clash)); !maps.Equal(got, clash) {
		t.Errorf("a hash collision handed out another set: %v", got)
	}
	if p.sharedSet(nil) != nil || p.sharedSet(map[string]string{}) == nil {
		t.Error("no labels and empty labels must stay as they were")
	}
	for i := range 40 {
		p.sharedSet(map[string]string{"storefleet.dev/store": fmt.Sprintf("store-%d", i)})
		if len(p.sets) > 16 {
			t.Fatalf("the pool holds %d sets, its bound is 16", len(p.sets))
		}
	}
}
