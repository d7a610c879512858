package gitsync

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// TestValidateBoundsDatabaseStorage: a store's database volume fits its
// plan's storage quota (v1alpha1.MaxDatabaseStorage), as the CRD's rule says,
// so what the stores repo declares can be created; the problem names the
// limit. The rule is the CRD's: kubectl and the API server say the same.
func TestValidateBoundsDatabaseStorage(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(plan, storage string) string {
		return valid + "  plan: " + plan + "\n  values:\n    databaseStorage: " + storage + "\n"
	}
	for _, plan := range v1alpha1.Plans {
		max := v1alpha1.MaxDatabaseStorage[plan]
		over := max.DeepCopy()
		over.Add(resource.MustParse("1Mi"))
		if _, problems := v.File("stores/acme.yaml", []byte(manifest(string(plan), max.String()))); len(problems) > 0 {
			t.Errorf("plan %s with its largest database (%s): %v", plan, max.String(), problems)
		}
		_, problems := v.File("stores/acme.yaml", []byte(manifest(string(plan), over.String())))
		want := "spec.values.databaseStorage: must be at most " + max.String() + " on plan " + string(plan) + ": its storage quota less the uploads volume"
		if len(problems) != 1 || !strings.Contains(problems[0].String(), want) {
			t.Errorf("plan %s with %s: problems %v, want one saying %q", plan, over.String(), problems, want)
		}
	}
	// No plan is the default plan, small; a plain number of bytes is a
	// quantity too.
	noPlan := valid + "  values:\n    databaseStorage: 30Gi\n"
	if _, problems := v.File("stores/acme.yaml", []byte(noPlan)); len(problems) != 1 || !strings.Contains(problems[0].String(), "at most 19Gi on plan small") {
		t.Errorf("30Gi without a plan: %v", problems)
	}
	if _, problems := v.File("stores/acme.yaml", []byte(manifest("small", "2000000000"))); len(problems) > 0 {
		t.Errorf("2·10^9 bytes on small: %v", problems)
	}
	if _, problems := v.File("stores/acme.yaml", []byte(manifest("small", "100Mi"))); len(problems) != 1 || !strings.Contains(problems[0].String(), "must be at least "+v1alpha1.MinDatabaseStorage.String()) {
		t.Errorf("a 100Mi database: %v, want refused (at least 1Gi)", problems)
	}
}
