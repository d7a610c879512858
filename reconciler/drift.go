package reconciler

import (
	"context"
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/runtime/conditions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// reconcileDrift compares every object of the release with the live one and
// repairs the release only when something really differs: an object is
// missing, a replica count changed, or a field the chart sets was edited.
// A healthy store costs reads from the cache and no Helm call.
func (r *StoreReconciler) reconcileDrift(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	if sc.release == nil || !sc.release.Deployed() {
		return ctrl.Result{}, nil
	}
	if sc.release.Action != "" {
		// Installed or upgraded by this very reconcile: its objects are
		// the release's, and the cache may not show them yet (a loaded
		// API server's watch lags by seconds, and a check now read "deleted"
		// and upgraded again). Their watch events bring the next check.
		return ctrl.Result{}, nil
	}
	view, err := r.releaseView(ctx, sc)
	if err != nil {
		return ctrl.Result{}, err
	}
	todo, err := r.unverified(ctx, view)
	if err != nil {
		return ctrl.Result{}, err
	}
	var drifted []string
	var changed []client.Object
	if len(todo) > 0 {
		if drifted, changed, err = r.compareRelease(ctx, sc, view, todo); err != nil {
			return ctrl.Result{}, err
		}
	}
	now := metav1.Now()
	if s.Status.Drift == nil {
		s.Status.Drift = &v1alpha1.DriftStatus{}
	}
	// Saved only with another change of the status (see statusChanged): an
	// idle store's periodic check writes nothing.
	s.Status.Drift.LastChecked = &now
	if len(drifted) == 0 {
		driftChecks.WithLabelValues("clean").Inc()
		if conditions.IsTrue(s, v1alpha1.DriftedCondition) {
			// Corrected by someone else: helm-controller in Flux mode.
			r.driftCorrected(sc, conditions.GetMessage(s, v1alpha1.DriftedCondition))
		}
		conditions.MarkFalse(s, v1alpha1.DriftedCondition, v1alpha1.ReasonNoDrift, "managed objects match release revision %d", sc.release.Revision)
		return ctrl.Result{}, nil
	}
	driftChecks.WithLabelValues("drifted").Inc()
	what := strings.Join(drifted, "; ")
	alreadyKnown := conditions.IsTrue(s, v1alpha1.DriftedCondition) && conditions.GetMessage(s, v1alpha1.DriftedCondition) == what
	conditions.MarkTrue(s, v1alpha1.DriftedCondition, v1alpha1.ReasonDriftDetected, "%s", what)
	if !alreadyKnown {
		r.record(sc, v1alpha1.EventDriftDetected, what)
	}
	log.FromContext(ctx).Info("Drift detected, repairing release", "store", s.Name, "drift", what, "delivery", sc.delivery.Mode())
	state, err := sc.delivery.Ensure(ctx, sc.desired, !alreadyKnown || sc.delivery.Mode() == v1alpha1.DeliveryHelm)
	if err != nil && sc.delivery.Mode() == v1alpha1.DeliveryHelm && len(changed) > 0 {
		// Helm's three-way patch cannot undo every edit: a Service port
		// changed by hand is patched back as a second port of the same
		// name, which the API server refuses, and every further attempt
		// fails the same way. The edited objects are deleted (their
		// dependents orphaned, to be adopted again) and the release
		// recreates them, as it does for a deleted object.
		var names []string
		for _, o := range changed {
			if derr := r.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationOrphan), client.Preconditions{UID: ptr.To(o.GetUID())}); derr != nil && !apierrors.IsNotFound(derr) {
				return ctrl.Result{}, fmt.Errorf("repair drift: %w; and recreating %s %s: %w", err, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), derr)
			}
			names = append(names, o.GetObjectKind().GroupVersionKind().Kind+" "+o.GetName())
		}
		log.FromContext(ctx).Info("Drift not patched back; recreating the edited objects", "store", s.Name, "objects", names, "error", err.Error())
		r.record(sc, v1alpha1.EventDriftDetected, truncate(fmt.Sprintf("%s could not be patched back (%s); recreated from the release", strings.Join(names, ", "), err.Error()), 512))
		state, err = sc.delivery.Ensure(ctx, sc.desired, true)
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("repair drift: %w", err)
	}
	if sc.delivery.Mode() == v1alpha1.DeliveryFlux {
		// helm-controller (drift detection enabled) corrects it; it was
		// asked to reconcile now. The next check records the correction.
		return ctrl.Result{RequeueAfter: watchBackstop}, nil
	}
	sc.release = &state
	r.driftCorrected(sc, what)
	conditions.MarkFalse(s, v1alpha1.DriftedCondition, v1alpha1.ReasonNoDrift, "drift corrected by release revision %d", state.Revision)
	// Look again soon: the repaired workloads must become ready.
	return ctrl.Result{RequeueAfter: watchBackstop}, nil
}

// compareRelease compares the objects of the release at the indices todo
// with the live ones and lists what differs, and the live objects that were
// edited (not deleted). The view remembers each object found matching, so
// the next check compares only what was written since.
func (r *StoreReconciler) compareRelease(ctx context.Context, sc *scope, view releaseView, todo []int) ([]string, []client.Object, error) {
	objs, err := sc.releaseObjects(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(objs) != len(view.objects) {
		return nil, nil, fmt.Errorf("release manifest has %d objects, its view %d", len(objs), len(view.objects))
	}
	driftCompared.Add(float64(len(todo)))
	listed, err := r.listTrimmed(ctx, sc.namespace, objs, todo)
	if err != nil {
		return nil, nil, err
	}
	var drifted []string
	var changed []client.Object
	verified := make([]verifiedObject, len(objs))
	copy(verified, view.verified)
	for _, i := range todo {
		want := objs[i]
		verified[i] = verifiedObject{}
		live, err := r.newObject(want.GroupVersionKind())
		if err != nil {
			return nil, nil, err
		}
		if items, ok := listed[want.GroupVersionKind()]; ok {
			if o, found := items[want.GetName()]; found {
				live = o
			} else {
				err = apierrors.NewNotFound(schema.GroupResource{Resource: want.GetKind()}, want.GetName())
			}
		} else if specTrimmed(want.GroupVersionKind()) {
			// The cache holds no spec of the kind to compare.
			err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), live)
		} else if err = r.Get(ctx, client.ObjectKeyFromObject(want), live); apierrors.IsNotFound(err) {
			// The cache may lag behind a create; only the API server
			// says an object is gone.
			err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), live)
		}
		switch {
		case apierrors.IsNotFound(err):
			drifted = append(drifted, fmt.Sprintf("%s %s deleted", want.GetKind(), want.GetName()))
		case err != nil:
			return nil, nil, err
		default:
			liveMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
			if err != nil {
				return nil, nil, err
			}
			diffs := differences(want.Object, liveMap)
			if len(diffs) == 0 {
				verified[i] = verifiedAs(live)
				continue
			}
			drifted = append(drifted, fmt.Sprintf("%s %s changed (%s)", want.GetKind(), want.GetName(), strings.Join(firstN(diffs, 3), ", ")))
			if want.GetKind() != "PersistentVolumeClaim" {
				// A claim is never recreated: its data would go.
				live.GetObjectKind().SetGroupVersionKind(want.GroupVersionKind())
				changed = append(changed, live)
			}
		}
	}
	view.verified = verified
	if len(drifted) == 0 {
		view.text = "" // every object verified: later checks compare only what changes
	}
	r.views.put(sc.store.UID, view)
	return drifted, changed, nil
}

// listTrimmed reads from the API server, by one LIST per kind, the objects
// at the indices todo of the kinds the cache holds without their specs,
// where two or more of a kind are to be compared: a store's first check
// after the operator starts compares its 17 such objects (4 Deployments, a
// StatefulSet, 4 Services, 7 NetworkPolicies, an Ingress) in 5 requests
// rather than 17. A single object of a kind is read by a GET.
func (r *StoreReconciler) listTrimmed(ctx context.Context, namespace string, objs []*unstructured.Unstructured, todo []int) (map[schema.GroupVersionKind]map[string]client.Object, error) {
	count := map[schema.GroupVersionKind]int{}
	for _, i := range todo {
		if gvk := objs[i].GroupVersionKind(); specTrimmed(gvk) && objs[i].GetNamespace() == namespace {
			count[gvk]++
		}
	}
	listed := map[schema.GroupVersionKind]map[string]client.Object{}
	for gvk, n := range count {
		if n < 2 {
			continue
		}
		typed, err := r.Scheme().New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err != nil {
			return nil, fmt.Errorf("release objects %s: %w", gvk.Kind, err)
		}
		list, ok := typed.(client.ObjectList)
		if !ok {
			return nil, fmt.Errorf("release objects %s: no list kind", gvk.Kind)
		}
		if err := r.APIReader.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return nil, err
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		byName := make(map[string]client.Object, len(items))
		for _, item := range items {
			if o, ok := item.(client.Object); ok {
				byName[o.GetName()] = o
			}
		}
		listed[gvk] = byName
	}
	return listed, nil
}

// driftCorrected records a healed drift.
func (r *StoreReconciler) driftCorrected(sc *scope, what string) {
	s := sc.store
	now := metav1.Now()
	if s.Status.Drift == nil {
		s.Status.Drift = &v1alpha1.DriftStatus{}
	}
	s.Status.Drift.LastCorrected = &now
	s.Status.Drift.LastCorrection = truncate(what, 512)
	s.Status.Drift.Corrections++
	driftCorrections.Inc()
	r.record(sc, v1alpha1.EventDriftCorrected, what)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("+%d more", len(s)-n))
	}
	return s
}
