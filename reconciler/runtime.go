package reconciler

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch

// storeRuntime says whether the store's scheduled pods run on real nodes,
// on kwok's simulated ones, or on both; "" while none is scheduled. Nodes are
// read as metadata only (the annotation is all it needs), from the cache.
func (r *StoreReconciler) storeRuntime(ctx context.Context, sc *scope) (v1alpha1.Runtime, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(sc.namespace)); err != nil {
		return "", err
	}
	var real, simulated bool
	seen := map[string]bool{}
	for _, p := range pods.Items {
		node := p.Spec.NodeName
		if node == "" || seen[node] {
			continue
		}
		seen[node] = true
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Node"))
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
	switch {
	case real && simulated:
		return v1alpha1.RuntimeMixed, nil
	case simulated:
		return v1alpha1.RuntimeSimulated, nil
	case real:
		return v1alpha1.RuntimeReal, nil
	}
	return "", nil
}
