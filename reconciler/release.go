package reconciler

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/runtime/conditions"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// releaseName is the Helm release of a store: its name, in its own namespace.
func releaseName(s *v1alpha1.Store) string { return s.Name }

// reconcileRelease installs or upgrades the chart when the desired release
// (chart version + values digest) changed, and otherwise only observes it.
func (r *StoreReconciler) reconcileRelease(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	vals := ChartValues(s, r.Platform)
	if size, err := r.databaseVolumeSize(ctx, sc.namespace); err != nil {
		return ctrl.Result{}, err
	} else if size != "" {
		// A StatefulSet's volume claim templates are immutable: once the
		// database exists, its volume keeps the size it was created with
		// (a bigger plan does not resize it).
		vals["database"].(map[string]any)["size"] = size
	}
	sc.desired = DesiredRelease{
		Name:         releaseName(s),
		Namespace:    sc.namespace,
		ChartVersion: s.Spec.ChartVersion,
		Values:       vals,
		Digest:       valuesDigest(s.Spec.ChartVersion, vals),
	}
	state, err := r.Delivery.Ensure(ctx, sc.desired, false)
	if err != nil {
		reason := v1alpha1.ReasonUpgradeFailed
		if s.Status.Release == nil {
			reason = v1alpha1.ReasonInstallFailed
		}
		conditions.MarkFalse(s, v1alpha1.HelmInstalledCondition, reason, "%s", err.Error())
		return ctrl.Result{}, err
	}
	sc.release = &state
	s.Status.Release = &v1alpha1.ReleaseStatus{
		Mode: r.Delivery.Mode(), Name: sc.desired.Name, Namespace: sc.namespace,
		Revision: state.Revision, ChartVersion: state.ChartVersion, Digest: state.Digest,
	}
	if !state.Deployed() {
		conditions.MarkFalse(s, v1alpha1.HelmInstalledCondition, v1alpha1.ReasonProgressing, "release %s revision %d is %s", sc.desired.Name, state.Revision, state.Status)
		return ctrl.Result{RequeueAfter: requeueWaiting}, nil
	}
	if state.Action == "upgrade" && conditions.IsTrue(s, v1alpha1.HelmInstalledCondition) {
		r.record(sc, v1alpha1.EventHelmUpgraded, fmt.Sprintf("release %s upgraded to revision %d (chart medusa-store %s)", sc.desired.Name, state.Revision, state.ChartVersion))
	}
	conditions.MarkTrue(s, v1alpha1.HelmInstalledCondition, v1alpha1.ReasonSucceeded, "release %s revision %d deployed (chart medusa-store %s)", sc.desired.Name, state.Revision, state.ChartVersion)
	inventory, err := r.inventory(sc, state.Manifest)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.Status.Inventory = inventory
	return ctrl.Result{}, nil
}

// inventory lists the operator's own objects and the release's objects.
func (r *StoreReconciler) inventory(sc *scope, manifest string) ([]v1alpha1.InventoryEntry, error) {
	inv := []v1alpha1.InventoryEntry{
		{APIVersion: "v1", Kind: "Namespace", Name: sc.namespace},
		{APIVersion: "v1", Kind: "ResourceQuota", Namespace: sc.namespace, Name: quotaName},
		{APIVersion: "v1", Kind: "LimitRange", Namespace: sc.namespace, Name: limitRangeName},
		{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy", Namespace: sc.namespace, Name: denyPolicyName},
		{APIVersion: "v1", Kind: "Secret", Namespace: sc.namespace, Name: CredentialsSecret},
	}
	objs, err := manifestObjects(manifest, sc.namespace)
	if err != nil {
		return nil, fmt.Errorf("parse release manifest: %w", err)
	}
	for _, o := range objs {
		inv = append(inv, v1alpha1.InventoryEntry{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()})
	}
	return inv, nil
}

// databaseVolumeSize is the volume size of the existing database, or "".
func (r *StoreReconciler) databaseVolumeSize(ctx context.Context, namespace string) (string, error) {
	var sts appsv1.StatefulSet
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "postgres"}, &sts); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	for _, t := range sts.Spec.VolumeClaimTemplates {
		if q, ok := t.Spec.Resources.Requests[corev1.ResourceStorage]; ok && t.Name == "data" {
			return q.String(), nil
		}
	}
	return "", nil
}
