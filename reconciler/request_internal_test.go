package reconciler

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// countedReader counts the live reads the reconciler makes.
func countedReader(c client.WithWatch, n *int) client.Reader {
	return interceptor.NewClient(c, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			*n++
			return c.Get(ctx, key, obj, opts...)
		},
	})
}

// Objects that only carry a store label — a bare Flux HelmRelease of the same
// name, what a deleted store left — bring requests for Stores that do not
// exist. Each used to cost a live GET; a fleet of them loaded the API server
// with thousands. The cache answers them, and the API server hears nothing.
func TestRequestForAStoreTheCacheLacksReadsNothingLive(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	cache := fake.NewClientBuilder().WithScheme(scheme).Build()
	live := fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(&v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}).Build()
	reads := 0
	r := &StoreReconciler{Client: cache, APIReader: countedReader(live, &reads)}
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "lookalike"}})
	if err != nil || !res.IsZero() {
		t.Fatalf("reconcile of an unknown store: %v %+v", err, res)
	}
	if reads != 0 {
		t.Errorf("%d live reads for a store the cache does not hold, want 0", reads)
	}

	// A Store the cache holds is read live, as before: the status patch is
	// computed against that copy.
	if err := cache.Create(context.Background(), &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "gone-live"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "gone-live"}}); err != nil {
		t.Fatalf("reconcile of a store the API server no longer has: %v", err)
	}
	if reads != 1 {
		t.Errorf("%d live reads for a store the cache holds, want 1", reads)
	}
}
