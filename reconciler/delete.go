package reconciler

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// reconcileDelete uninstalls the release, deletes the namespace, waits until
// both and the store's volumes are gone, and only then drops the finalizer.
// Each wait records in the scope what it is waiting for; summarize says it
// in the Ready condition.
func (r *StoreReconciler) reconcileDelete(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	if !controllerutil.ContainsFinalizer(s, v1alpha1.Finalizer) {
		sc.gone = true
		return ctrl.Result{}, nil
	}
	if sc.before.Phase != v1alpha1.PhaseDeleting {
		r.record(sc, v1alpha1.EventDeleting, fmt.Sprintf("deleting store %q: release, namespace %s and volumes", s.Name, sc.namespace))
	}
	waiting := func(format string, args ...any) (ctrl.Result, error) {
		sc.wait(v1alpha1.ReasonDeleting, format, args...)
		return ctrl.Result{RequeueAfter: watchBackstop}, nil
	}

	var ns corev1.Namespace
	err := r.APIReader.Get(ctx, client.ObjectKey{Name: sc.namespace}, &ns)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	// Deletion checks what creation checks: a namespace that is not this
	// Store's own is neither uninstalled from nor deleted, nor waited for.
	if err == nil && ownsNamespace(&ns, s) {
		if ns.DeletionTimestamp.IsZero() {
			delivery, err := r.Deliveries.Installed(ctx, s)
			if err != nil {
				return ctrl.Result{}, err
			}
			pending, err := delivery.Remove(ctx, s, sc.namespace, releaseName(s))
			if err != nil {
				sc.wait(v1alpha1.ReasonDeleting, "uninstall failed: %s", err.Error())
				return ctrl.Result{}, err
			}
			if pending != "" {
				return waiting("%s", pending)
			}
			policy := metav1.DeletePropagationForeground
			uid := ns.UID
			if err := r.Delete(ctx, &ns, &client.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, fmt.Errorf("delete namespace: %w", err)
			}
		}
		return waiting("waiting for namespace %s to be deleted%s", sc.namespace, namespaceBlockers(&ns))
	}
	if err == nil {
		// Someone else's namespace: its volumes are not the store's.
		return r.finishDelete(ctx, sc)
	}
	// The namespace is gone: wait for the volumes the store's claims had, so
	// nothing is left behind. The volumes come from the operator's cache,
	// indexed by claim namespace (a volume's deletion reconciles the store).
	var pvs corev1.PersistentVolumeList
	if err := r.List(ctx, &pvs, client.MatchingFields{volumeClaimNamespaceIndex: sc.namespace}); err != nil {
		return ctrl.Result{}, err
	}
	for _, pv := range pvs.Items {
		if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == sc.namespace {
			return waiting("waiting for PersistentVolume %s (claim %s) to be released", pv.Name, ref.Name)
		}
	}
	return r.finishDelete(ctx, sc)
}

// finishDelete drops what outlives the namespace and then the finalizer.
func (r *StoreReconciler) finishDelete(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	// The operator's copy of the credentials goes with the store's data.
	if err := r.deleteCredentialsCopy(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	orig := s.DeepCopy()
	controllerutil.RemoveFinalizer(s, v1alpha1.Finalizer)
	// With the copy's resourceVersion: finalizers another controller added
	// since the (cached) copy was read are not dropped with ours.
	if err := r.Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	sc.gone = true
	return ctrl.Result{}, nil
}

// namespaceBlockers quotes the namespace's own conditions that explain a slow
// deletion (remaining content, finalizers), so a stuck deletion shows why.
func namespaceBlockers(ns *corev1.Namespace) string {
	var msgs []string
	for _, c := range ns.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == corev1.NamespaceContentRemaining || c.Type == corev1.NamespaceFinalizersRemaining || c.Type == corev1.NamespaceDeletionContentFailure) {
			msgs = append(msgs, c.Message)
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return ": " + strings.Join(msgs, "; ")
}
