package reconciler

import (
	"context"
	"hash/fnv"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch

// storeRuntime says whether the store's scheduled pods run on real nodes,
// on kwok's simulated ones, or on both; "" while none is scheduled. The
// cache holds pods as metadata only, so the pods are read live — and only
// when their versions in the cache moved since the runtime was last found:
// an idle store's check reads none. Nodes are read as metadata only (the
// annotation is all it needs), from the cache.
func (r *StoreReconciler) storeRuntime(ctx context.Context, sc *scope) (v1alpha1.Runtime, error) {
	versions, err := r.cachedVersions(ctx, sc.namespace, podGVK)
	if err != nil {
		return "", err
	}
	if runtime, ok := r.runtimes.get(sc.store.UID, versions); ok {
		return runtime, nil
	}
	pods, err := r.livePods(ctx, sc)
	if err != nil {
		return "", err
	}
	var real, simulated bool
	seen := map[string]bool{}
	for _, p := range pods {
		node := p.Spec.NodeName
		if node == "" || seen[node] {
			continue
		}
		seen[node] = true
		meta := metadataObject(corev1.SchemeGroupVersion.WithKind("Node"))
		if err := r.Get(ctx, client.ObjectKey{Name: node}, meta); err != nil {
			if apierrors.IsNotFound(err) {
				continue // the node went away; its pods are being replaced
			}
			return "", err
		}
		if _, ok := meta.GetAnnotations()[v1alpha1.SimulatedNodeAnnotation]; ok {
			simulated = true
		} else {
			real = true
		}
	}
	var runtime v1alpha1.Runtime
	switch {
	case real && simulated:
		runtime = v1alpha1.RuntimeMixed
	case simulated:
		runtime = v1alpha1.RuntimeSimulated
	case real:
		runtime = v1alpha1.RuntimeReal
	}
	r.runtimes.put(sc.store.UID, versions, runtime)
	return runtime, nil
}

// livePods are the store's pods as the API server has them, read once a
// reconcile: the cache holds their metadata only.
func (r *StoreReconciler) livePods(ctx context.Context, sc *scope) ([]corev1.Pod, error) {
	if sc.pods != nil {
		return sc.pods, nil
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(sc.namespace)); err != nil {
		return nil, err
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	sc.pods = pods.Items
	if sc.pods == nil {
		sc.pods = []corev1.Pod{} // read, and none
	}
	return sc.pods, nil
}

// cachedVersions digests the kinds, names and resourceVersions of the
// namespace's objects of the given kinds, which the cache holds as metadata:
// it changes whenever one of them comes, goes or is written.
func (r *StoreReconciler) cachedVersions(ctx context.Context, namespace string, kinds ...schema.GroupVersionKind) (uint64, error) {
	versions := map[string]string{}
	for _, gvk := range kinds {
		var list metav1.PartialObjectMetadataList
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return 0, err
		}
		for _, o := range list.Items {
			versions[gvk.Kind+"/"+o.Name] = o.ResourceVersion
		}
	}
	h := fnv.New64a()
	writeSorted(h, versions)
	return h.Sum64(), nil
}
