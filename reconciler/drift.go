package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// requeueWaiting is how soon a store waiting on something is looked at again
// (its watched objects usually trigger a reconcile sooner).
const requeueWaiting = 2 * time.Second

// apply server-side applies desired when it is missing or differs from
// existing, and reports whether it changed anything. Comparing first keeps a
// healthy store's reconcile free of writes.
func (r *StoreReconciler) apply(ctx context.Context, desired, existing client.Object, missing bool) (bool, error) {
	want, err := runtime.DefaultUnstructuredConverter.ToUnstructured(desired)
	if err != nil {
		return false, err
	}
	if !missing {
		have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(existing)
		if err != nil {
			return false, err
		}
		if len(differences(want, have)) == 0 {
			return false, nil
		}
	}
	u := &unstructured.Unstructured{Object: want}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return false, err
	}
	return true, nil
}

// differences lists the paths where live does not carry what desired says:
// fields desired leaves out (defaults, status, other managers' fields) are
// not drift. It compares labels and annotations of metadata and every other
// top-level field but status.
func differences(desired, live map[string]any) []string {
	var diffs []string
	for k, v := range desired {
		switch k {
		case "apiVersion", "kind", "status":
			continue
		case "metadata":
			dm, _ := v.(map[string]any)
			lm, _ := live["metadata"].(map[string]any)
			for _, f := range []string{"labels", "annotations"} {
				if dv, ok := dm[f]; ok {
					diffs = append(diffs, subsetDiff("metadata."+f, normalize(dv), normalize(lm[f]))...)
				}
			}
		default:
			diffs = append(diffs, subsetDiff(k, normalize(v), normalize(live[k]))...)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// normalize gives numbers one representation (JSON's float64), whether they
// came from YAML, Go structs or the API server.
func normalize(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return v
	}
	return out
}

func subsetDiff(path string, want, have any) []string {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			if len(w) == 0 {
				return nil
			}
			return []string{path}
		}
		var diffs []string
		for k, v := range w {
			diffs = append(diffs, subsetDiff(path+"."+k, v, h[k])...)
		}
		return diffs
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			if len(w) == 0 && have == nil {
				return nil
			}
			return []string{path}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, subsetDiff(fmt.Sprintf("%s[%d]", path, i), w[i], h[i])...)
		}
		return diffs
	case nil:
		return nil
	default:
		if !reflect.DeepEqual(want, have) {
			return []string{path}
		}
		return nil
	}
}

// manifestObjects parses a release manifest.
func manifestObjects(manifest, namespace string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(manifest)), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetNamespace() == "" {
			u.SetNamespace(namespace)
		}
		objs = append(objs, u)
	}
}

// reconcileDrift compares every object of the release with the live one and
// repairs the release only when something really differs: an object is
// missing, a replica count changed, or a field the chart sets was edited.
// A healthy store costs reads from the cache and no Helm call.
func (r *StoreReconciler) reconcileDrift(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	if sc.release == nil || !sc.release.Deployed() {
		return ctrl.Result{}, nil
	}
	objs, err := manifestObjects(sc.release.Manifest, sc.namespace)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("parse release manifest: %w", err)
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
	s.Status.Drift.LastChecked = &now
	if len(drifted) == 0 {
		if conditions.IsTrue(s, v1alpha1.DriftedCondition) {
			// Corrected by someone else: helm-controller in Flux mode.
			r.driftCorrected(sc, conditions.GetMessage(s, v1alpha1.DriftedCondition))
		}
		conditions.MarkFalse(s, v1alpha1.DriftedCondition, v1alpha1.ReasonNoDrift, "managed objects match release revision %d", sc.release.Revision)
		return ctrl.Result{}, nil
	}
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
		return ctrl.Result{RequeueAfter: requeueWaiting}, nil
	}
	sc.release = &state
	r.driftCorrected(sc, what)
	conditions.MarkFalse(s, v1alpha1.DriftedCondition, v1alpha1.ReasonNoDrift, "drift corrected by release revision %d", state.Revision)
	// Look again soon: the repaired workloads must become ready.
	return ctrl.Result{RequeueAfter: requeueWaiting}, nil
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
