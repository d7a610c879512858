package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

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
// top-level field but status. Both sides are unstructured (JSON types);
// numbers compare by value, whether decoded as int64 or float64.
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
					diffs = append(diffs, subsetDiff("metadata."+f, dv, lm[f])...)
				}
			}
		default:
			diffs = append(diffs, subsetDiff(k, v, live[k])...)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// number is v as a float64 when it is a number of any Go type a decoder
// gives (JSON and YAML decoders, the unstructured converter).
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case float32:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
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
		// A comparison, not a JSON round trip of both sides: that was most
		// of the CPU of an idle fleet's drift checks.
		if w, ok := number(want); ok {
			if h, ok := number(have); ok && h == w {
				return nil
			}
			return []string{path}
		}
		if !reflect.DeepEqual(want, have) {
			return []string{path}
		}
		return nil
	}
}
