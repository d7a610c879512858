package reconciler

import (
	"context"
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/runtime/conditions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	objs, err := sc.releaseObjects()
	if err != nil {
		return ctrl.Result{}, err
	}
	var drifted []string
	for _, want := range objs {
		// Typed objects, so reads hit the label-filtered informers the
		// controller already watches instead of new unstructured ones.
		typed, err := r.Scheme().New(want.GroupVersionKind())
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("release object %s: %w", want.GetKind(), err)
		}
		live, ok := typed.(client.Object)
		if !ok {
			return ctrl.Result{}, fmt.Errorf("release object %s is not a client.Object", want.GetKind())
		}
		err = r.Get(ctx, client.ObjectKeyFromObject(want), live)
		switch {
		case apierrors.IsNotFound(err):
			drifted = append(drifted, fmt.Sprintf("%s %s deleted", want.GetKind(), want.GetName()))
		case err != nil:
			return ctrl.Result{}, err
		default:
			liveMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
			if err != nil {
				return ctrl.Result{}, err
			}
			if diffs := differences(want.Object, liveMap); len(diffs) > 0 {
				drifted = append(drifted, fmt.Sprintf("%s %s changed (%s)", want.GetKind(), want.GetName(), strings.Join(firstN(diffs, 3), ", ")))
			}
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
