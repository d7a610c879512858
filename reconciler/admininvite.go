package reconciler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// reconcileAdminInvite creates the store's platform token once. Unlike the
// credentials it guards no data: a lost one is simply minted again (the
// backend reads the mounted file on every call, so no restart is needed).
func (r *StoreReconciler) reconcileAdminInvite(ctx context.Context, sc *scope) (ctrl.Result, error) {
	key := client.ObjectKey{Namespace: sc.namespace, Name: v1alpha1.AdminInviteSecret}
	var existing corev1.Secret
	err := r.Get(ctx, key, &existing)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, &existing)
	}
	switch {
	case err == nil && len(existing.Data[v1alpha1.AdminInviteTokenKey]) > 0:
		return ctrl.Result{}, nil
	case err == nil:
		// Emptied by hand: a token is only an authorisation, so replace it.
		token, err := randomSecret()
		if err != nil {
			return ctrl.Result{}, err
		}
		existing.Data = map[string][]byte{v1alpha1.AdminInviteTokenKey: token}
		return ctrl.Result{}, r.Update(ctx, &existing)
	case !apierrors.IsNotFound(err):
		return ctrl.Result{}, err
	}
	token, err := randomSecret()
	if err != nil {
		return ctrl.Result{}, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AdminInviteSecret, Namespace: sc.namespace, Labels: storeLabels(sc.store)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{v1alpha1.AdminInviteTokenKey: token},
	}
	if err := r.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("create admin invite secret: %w", err)
	}
	return ctrl.Result{}, nil
}
