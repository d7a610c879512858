package reconciler

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// releaseViews remember, per store, what its release manifest holds (the
// objects, in order) and which resourceVersions those objects had when a
// drift check last found every one of them as the release says. A check of
// an idle store then reads each object's resourceVersion from the cache and
// neither parses the manifest nor compares an object: an object that was not
// written since it was found matching still matches, and one that was
// written has a new resourceVersion and is compared in full. (Parsing and
// comparing were three quarters of an idle fleet's CPU.)
type releaseViews struct {
	mu    sync.Mutex
	views map[types.UID]releaseView
}

// releaseView is one store's: of the manifest with this digest.
type releaseView struct {
	manifest [sha256.Size]byte
	objects  []objectRef
	// verified holds, per object, what it was at the last drift check that
	// found it as the release says; nil until there was one, and the zero
	// value for an object not found so.
	verified []verifiedObject
	// text is the manifest, kept from the view's making until a check has
	// found every object as it says: the first check after an install
	// compares them all, and would otherwise read the manifest back from
	// Helm's storage (the memo keeps none).
	text string
}

// verifiedObject is an object as a drift check found it matching.
type verifiedObject struct {
	resourceVersion string
	uid             types.UID
	generation      int64
	metadata        uint64
}

// verifiedAs is how the object is remembered once found matching.
func verifiedAs(o client.Object) verifiedObject {
	return verifiedObject{resourceVersion: o.GetResourceVersion(), uid: o.GetUID(), generation: o.GetGeneration(), metadata: metadataDigest(o)}
}

// stillMatches reports whether the cached object is the one found
// matching, unchanged where the release speaks. An object not written since
// is; so is a workload written only in its status (its rollout): the cache
// holds no pod template of a workload to compare (specTrimmed), but the
// API server counts every change of its spec in metadata.generation
// (generationTracksSpec), and its labels and annotations are in the cache.
func (v verifiedObject) stillMatches(cached client.Object, gvk schema.GroupVersionKind) bool {
	switch {
	case v.resourceVersion == "":
		return false
	case cached.GetResourceVersion() == v.resourceVersion:
		return true
	}
	return generationTracksSpec(gvk) && cached.GetUID() == v.uid && cached.GetGeneration() == v.generation && metadataDigest(cached) == v.metadata
}

// metadataDigest digests an object's labels and annotations.
func metadataDigest(o client.Object) uint64 {
	h := fnv.New64a()
	for _, m := range []map[string]string{o.GetLabels(), o.GetAnnotations()} {
		writeSorted(h, m)
		_, _ = h.Write([]byte{1})
	}
	return h.Sum64()
}

// objectRef names one object of a release.
type objectRef struct {
	gvk schema.GroupVersionKind
	key client.ObjectKey
}

func (v *releaseViews) get(uid types.UID, digest [sha256.Size]byte) (releaseView, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	view, ok := v.views[uid]
	return view, ok && view.manifest == digest
}

func (v *releaseViews) put(uid types.UID, view releaseView) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.views == nil {
		v.views = map[types.UID]releaseView{}
	}
	v.views[uid] = view
}

// forget drops a store's view (the store is gone).
func (v *releaseViews) forget(uid types.UID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.views, uid)
}

// releaseView is the view of the scope's release: remembered, or made from
// the parsed manifest.
func (r *StoreReconciler) releaseView(ctx context.Context, sc *scope) (releaseView, error) {
	digest := sc.release.manifestDigest()
	if view, ok := r.views.get(sc.store.UID, digest); ok {
		if sc.release.Manifest == "" && view.text != "" {
			sc.release.Manifest = view.text // the same digest
		}
		return view, nil
	}
	objs, err := sc.releaseObjects(ctx)
	if err != nil {
		return releaseView{}, err
	}
	view := releaseView{manifest: digest, objects: make([]objectRef, len(objs)), text: sc.release.Manifest}
	for i, o := range objs {
		// The parsed manifest's strings are the view's only hold on them:
		// the pool's copies (the kinds, the names every store repeats, its
		// namespace) let the manifest go whole.
		gvk, p := o.GroupVersionKind(), cachedStrings
		view.objects[i] = objectRef{
			gvk: schema.GroupVersionKind{Group: p.shared(gvk.Group), Version: p.shared(gvk.Version), Kind: p.shared(gvk.Kind)},
			key: client.ObjectKey{Namespace: p.shared(o.GetNamespace()), Name: p.shared(o.GetName())},
		}
	}
	r.views.put(sc.store.UID, view)
	return view, nil
}

// unverified lists the objects of the view (by index) that a drift check
// must compare: all of them before the first check, then those written
// since they were found matching, or gone from the cache. A workload whose
// status alone was written is remembered at its new resourceVersion, so the
// next check takes the quick path again: the entry is updated in place, in
// the remembered view's own slice (a store is reconciled by one worker at a
// time).
func (r *StoreReconciler) unverified(ctx context.Context, view releaseView) ([]int, error) {
	if view.verified == nil {
		all := make([]int, len(view.objects))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	var todo []int
	for i, ref := range view.objects {
		cached, err := r.cachedObject(ref.gvk)
		if err != nil {
			return nil, err
		}
		// Read without a copy: only the versions and metadata are looked at.
		switch err := r.Get(ctx, ref.key, cached, client.UnsafeDisableDeepCopy); {
		case apierrors.IsNotFound(err):
			todo = append(todo, i)
		case err != nil:
			return nil, err
		case !view.verified[i].stillMatches(cached, ref.gvk):
			todo = append(todo, i)
		case cached.GetResourceVersion() != view.verified[i].resourceVersion:
			view.verified[i].resourceVersion = cached.GetResourceVersion()
		}
	}
	return todo, nil
}

// newObject is an empty typed object of the kind, so reads hit the
// label-filtered informers the controller already watches instead of new
// unstructured ones.
func (r *StoreReconciler) newObject(gvk schema.GroupVersionKind) (client.Object, error) {
	typed, err := r.Scheme().New(gvk)
	if err != nil {
		return nil, fmt.Errorf("release object %s: %w", gvk.Kind, err)
	}
	obj, ok := typed.(client.Object)
	if !ok {
		return nil, fmt.Errorf("release object %s is not a client.Object", gvk.Kind)
	}
	return obj, nil
}

// cachedObject is an empty object of the kind as the cache holds it: of a
// kind cached as metadata only, a PartialObjectMetadata (a typed one would
// start a typed informer of its own).
func (r *StoreReconciler) cachedObject(gvk schema.GroupVersionKind) (client.Object, error) {
	if metadataOnly(gvk) {
		return metadataObject(gvk), nil
	}
	return r.newObject(gvk)
}

// inventoryOf lists the operator's own objects and the release's objects.
func inventoryOf(namespace string, view releaseView) []v1alpha1.InventoryEntry {
	inv := []v1alpha1.InventoryEntry{
		{APIVersion: "v1", Kind: "Namespace", Name: namespace},
		{APIVersion: "v1", Kind: "ResourceQuota", Namespace: namespace, Name: quotaName},
		{APIVersion: "v1", Kind: "LimitRange", Namespace: namespace, Name: limitRangeName},
		{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy", Namespace: namespace, Name: denyPolicyName},
		{APIVersion: "v1", Kind: "Secret", Namespace: namespace, Name: CredentialsSecret},
		{APIVersion: "v1", Kind: "Secret", Namespace: namespace, Name: v1alpha1.AdminInviteSecret},
	}
	for _, o := range view.objects {
		inv = append(inv, v1alpha1.InventoryEntry{APIVersion: o.gvk.GroupVersion().String(), Kind: o.gvk.Kind, Namespace: o.key.Namespace, Name: o.key.Name})
	}
	return inv
}
