package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/manifests"
)

// fluxRecheck is the backstop re-check of a store waiting on helm-controller.
const fluxRecheck = 15 * time.Second

// Both deliveries mark a release the same way and keep the same history.
const (
	// digestKey carries the desired release's digest (chart version +
	// values): a Helm release label, a HelmRelease annotation.
	digestKey = "storefleet.dev/digest"
	// releaseHistory caps the release revisions kept per store.
	releaseHistory = 5
)

// releaseName is the Helm release of a store: its name, in its own namespace.
func releaseName(s *v1alpha1.Store) string { return s.Name }

// reconcileRelease installs or upgrades the chart when the desired release
// (chart version + values digest) changed, and otherwise only observes it.
func (r *StoreReconciler) reconcileRelease(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	vals := ChartValues(s, r.Platform)
	if size, err := r.databaseVolumeSize(ctx, sc); err != nil {
		return ctrl.Result{}, err
	} else if size != "" {
		// A StatefulSet's volume claim templates are immutable: once the
		// database exists, its volume keeps the size it was created with
		// (a bigger plan does not resize it).
		vals["database"].(map[string]any)["size"] = size
	}
	sc.desired = DesiredRelease{
		Store:        s,
		Name:         releaseName(s),
		Namespace:    sc.namespace,
		ChartVersion: s.Spec.ChartVersion,
		Values:       vals,
		Digest:       valuesDigest(s.Spec.ChartVersion, vals),
	}
	delivery, previous, err := r.Deliveries.For(s)
	if err != nil {
		conditions.MarkFalse(s, v1alpha1.HelmInstalledCondition, v1alpha1.ReasonDeliveryUnavailable, "%s", err.Error())
		return ctrl.Result{RequeueAfter: fluxCheckInterval}, nil
	}
	sc.delivery = delivery
	if previous != nil {
		// Hand over: the old delivery lets go without uninstalling, the new
		// one adopts the same release (name, namespace, storage).
		pending, err := previous.Detach(ctx, sc.store, sc.namespace, sc.desired.Name)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("hand release over from %s: %w", previous.Mode(), err)
		}
		if pending != "" {
			conditions.MarkFalse(s, v1alpha1.HelmInstalledCondition, v1alpha1.ReasonProgressing, "moving to %s delivery: %s", delivery.Mode(), pending)
			return ctrl.Result{RequeueAfter: requeueWaiting}, nil
		}
		r.record(sc, v1alpha1.EventDeliveryHandover, fmt.Sprintf("release %s handed over from %s to %s delivery, not reinstalled", sc.desired.Name, previous.Mode(), delivery.Mode()))
		// From here on the store is in the new mode, even if the first
		// Ensure below fails.
		s.Status.Release.Mode = delivery.Mode()
	}
	// After a hand-over the new delivery upgrades at once, so the release's
	// latest revision is its own.
	state, err := delivery.Ensure(ctx, sc.desired, previous != nil)
	if err != nil {
		reason := v1alpha1.ReasonUpgradeFailed
		if s.Status.Release == nil {
			reason = v1alpha1.ReasonInstallFailed
		}
		conditions.MarkFalse(s, v1alpha1.HelmInstalledCondition, reason, "%s", err.Error())
		return ctrl.Result{}, err
	}
	sc.release = &state
	if state.Action != "" {
		// The workloads read before it are not the release's now.
		sc.workloads = nil
	}
	s.Status.Release = &v1alpha1.ReleaseStatus{
		Mode: delivery.Mode(), Name: sc.desired.Name, Namespace: sc.namespace,
		Revision: state.Revision, ChartVersion: state.ChartVersion, Digest: state.Digest,
	}
	for _, e := range state.Events {
		if !hasEntry(sc.before.ActivityLog, e) {
			r.record(sc, e.Event, e.Message)
		}
	}
	if !state.Deployed() {
		if state.Message != "" {
			conditions.MarkFalse(s, v1alpha1.HelmInstalledCondition, state.Reason, "%s", state.Message)
		} else {
			conditions.MarkFalse(s, v1alpha1.HelmInstalledCondition, v1alpha1.ReasonProgressing, "release %s revision %d is %s", sc.desired.Name, state.Revision, state.Status)
		}
		if delivery.Mode() == v1alpha1.DeliveryFlux {
			// The HelmRelease's status changes are watched; polling every
			// few seconds on top loaded the API server that helm-controller
			// needs (100 stores took 4x as long as bare HelmReleases).
			return ctrl.Result{RequeueAfter: fluxRecheck}, nil
		}
		return ctrl.Result{RequeueAfter: requeueWaiting}, nil
	}
	if state.Action == "upgrade" && conditions.IsTrue(s, v1alpha1.HelmInstalledCondition) {
		r.record(sc, v1alpha1.EventHelmUpgraded, fmt.Sprintf("release %s upgraded to revision %d (chart medusa-store %s)", sc.desired.Name, state.Revision, state.ChartVersion))
	}
	if state.Message != "" {
		conditions.MarkTrue(s, v1alpha1.HelmInstalledCondition, state.Reason, "%s", state.Message)
	} else {
		conditions.MarkTrue(s, v1alpha1.HelmInstalledCondition, v1alpha1.ReasonSucceeded, "release %s revision %d deployed (chart medusa-store %s)", sc.desired.Name, state.Revision, state.ChartVersion)
	}
	inventory, err := r.inventory(ctx, sc)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.Status.Inventory = inventory
	return ctrl.Result{}, nil
}

// hasEntry reports whether the log already holds this event with this
// message (a delivery reports its transitions on every reconcile).
func hasEntry(log []v1alpha1.ActivityEntry, e v1alpha1.ActivityEntry) bool {
	for _, l := range log {
		if l.Event == e.Event && l.Message == truncate(e.Message, 1024) {
			return true
		}
	}
	return false
}

// inventory lists the operator's own objects and the release's objects.
func (r *StoreReconciler) inventory(ctx context.Context, sc *scope) ([]v1alpha1.InventoryEntry, error) {
	view, err := r.releaseView(ctx, sc)
	if err != nil {
		return nil, err
	}
	return inventoryOf(sc.namespace, view), nil
}

// databaseVolumeSize is the volume size of the existing database, or "".
func (r *StoreReconciler) databaseVolumeSize(ctx context.Context, sc *scope) (string, error) {
	readings, err := r.workloadReadings(ctx, sc)
	if err != nil {
		return "", err
	}
	wr, _ := findReading(readings, "StatefulSet", "postgres")
	return wr.databaseVolume, nil
}

// releaseObjects are the objects of the release the scope observed,
// parsed once per reconcile (the inventory and the drift check both read
// them, read-only).
func (sc *scope) releaseObjects(ctx context.Context) ([]*unstructured.Unstructured, error) {
	if sc.release == nil {
		return nil, nil
	}
	manifest, err := sc.release.manifest(ctx)
	if err != nil {
		return nil, err
	}
	if sc.parsed == nil || sc.parsedFrom != manifest {
		objs, err := manifestObjects(manifest, sc.namespace)
		if err != nil {
			return nil, fmt.Errorf("parse release manifest: %w", err)
		}
		sc.parsed, sc.parsedFrom = objs, manifest
	}
	return sc.parsed, nil
}

// manifestObjects parses a release manifest; objects without a namespace
// are in the release's.
func manifestObjects(manifest, namespace string) ([]*unstructured.Unstructured, error) {
	objs, err := manifests.Decode([]byte(manifest))
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetNamespace() == "" {
			o.SetNamespace(namespace)
		}
	}
	return objs, nil
}
