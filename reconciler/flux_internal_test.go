package reconciler

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// A Flux-mode store is reconciled on each of helm-controller's status
// writes; each used to read the HelmRelease live. Ensure reads it from the
// watch's cache — unless the cache is behind the operator's own apply, which
// would report the previous generation's state and re-apply at every
// reconcile until the cache caught up.
func TestEnsureReadsTheHelmReleaseFromTheWatchCacheUnlessItIsBehind(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	_ = helmv2.AddToScheme(scheme)
	ctx := context.Background()
	api := fake.NewClientBuilder().WithScheme(scheme).Build()
	watchCache := fake.NewClientBuilder().WithScheme(scheme).Build()
	reads, applies := 0, 0
	live := interceptor.NewClient(api, interceptor.Funcs{
		// The fake client keeps no generation: each apply moves it, as
		// the API server does for a spec change, and the answer says so.
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			applies++
			if err := c.Apply(ctx, obj, opts...); err != nil {
				return err
			}
			var hr helmv2.HelmRelease
			if err := c.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "shop"}, &hr); err != nil {
				return err
			}
			hr.Generation++
			if err := c.Update(ctx, &hr); err != nil {
				return err
			}
			hr.APIVersion, hr.Kind = helmv2.GroupVersion.String(), helmv2.HelmReleaseKind
			js, err := json.Marshal(&hr)
			if err != nil {
				return err
			}
			return json.Unmarshal(js, obj)
		},
	})
	f := &FluxDelivery{
		Client: live, Reader: countedReader(api, &reads), Namespace: "flux-system",
		Source: ChartSource{Kind: "HelmRepository", Namespace: "flux-system", Name: "storefleet", Chart: "medusa-store"},
	}
	store := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "uid-shop"}}
	want := func(title string) DesiredRelease {
		return DesiredRelease{Store: store, Name: "shop", Namespace: "store-shop", ChartVersion: "0.1.0",
			Values: map[string]any{"title": title}, Digest: title}
	}
	key := client.ObjectKey{Namespace: "flux-system", Name: "shop"}
	// mirror copies the API server's HelmRelease into the watch's cache, as
	// the watch does a moment after each write.
	mirror := func() {
		var hr helmv2.HelmRelease
		if err := api.Get(ctx, key, &hr); err != nil {
			t.Fatal(err)
		}
		hr.ResourceVersion = ""
		_ = watchCache.Delete(ctx, &hr)
		if err := watchCache.Create(ctx, &hr); err != nil {
			t.Fatal(err)
		}
	}
	ensure := func(title string) ReleaseState {
		t.Helper()
		st, err := f.Ensure(ctx, want(title), false)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	step := func(name string, wantReads, wantApplies int) {
		t.Helper()
		if reads != wantReads || applies != wantApplies {
			t.Errorf("%s: %d live reads and %d applies, want %d and %d", name, reads, applies, wantReads, wantApplies)
		}
		reads, applies = 0, 0
	}

	// Before the watch's cache has synced, Ensure reads live.
	ensure("Coffee")
	step("first apply, no cache", 1, 1)
	f.UseCache(watchCache)

	// The cache has not seen the new HelmRelease: read live, not applied again.
	ensure("Coffee")
	step("cache without the HelmRelease", 1, 0)

	mirror()
	for range 3 {
		ensure("Coffee")
	}
	step("three reconciles, cache current", 0, 0)

	// The store changes: applied, so the cache now holds an older generation.
	ensure("Tea")
	step("the change applied", 0, 1)
	if gen := generation(t, api, key); gen < 2 {
		t.Fatalf("the API server's HelmRelease has generation %d after a change, want ≥ 2", gen)
	}
	st := ensure("Tea")
	step("cache behind the operator's apply", 1, 0)
	if strings.Contains(st.Message, "Coffee") {
		t.Errorf("state read from the stale copy: %+v", st)
	}

	mirror()
	ensure("Tea")
	step("cache caught up", 0, 0)

	// A HelmRelease of the name made anew (a store deleted and created
	// again) is not the one written: read live until it is applied.
	var hr helmv2.HelmRelease
	if err := watchCache.Get(ctx, key, &hr); err != nil {
		t.Fatal(err)
	}
	hr.UID = "another"
	hr.Generation = 99
	if err := watchCache.Update(ctx, &hr); err != nil {
		t.Fatal(err)
	}
	ensure("Tea")
	step("a HelmRelease of another UID in the cache", 1, 0)
}

func generation(t *testing.T, c client.Reader, key client.ObjectKey) int64 {
	t.Helper()
	var hr helmv2.HelmRelease
	if err := c.Get(context.Background(), key, &hr); err != nil {
		t.Fatal(err)
	}
	return hr.Generation
}
