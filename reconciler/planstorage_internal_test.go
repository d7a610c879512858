package reconciler

import (
	"io/fs"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/charts"
)

// TestDatabaseStorageFitsThePlanQuota: the largest database volume the CRD
// admits on a plan (v1alpha1.MaxDatabaseStorage) and the store's uploads
// volume together fit the plan's storage quota, so an accepted Store's
// volumes can always be created; and every plan's own default fits its bound.
func TestDatabaseStorageFitsThePlanQuota(t *testing.T) {
	data, err := fs.ReadFile(charts.MedusaStore(), "values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var vals struct {
		Uploads struct {
			Size resource.Quantity `json:"size"`
		} `json:"uploads"`
	}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	for _, plan := range v1alpha1.Plans {
		p, ok := plans[plan]
		if !ok {
			t.Fatalf("plan %s has no sizing", plan)
		}
		max, ok := v1alpha1.MaxDatabaseStorage[plan]
		if !ok {
			t.Fatalf("plan %s has no database bound", plan)
		}
		need := max.DeepCopy()
		need.Add(vals.Uploads.Size)
		if quota := p.Quota[corev1.ResourceRequestsStorage]; need.Cmp(quota) > 0 {
			t.Errorf("plan %s: the largest database (%s) and the uploads volume (%s) need %s, more than the quota's %s",
				plan, max.String(), vals.Uploads.Size.String(), need.String(), quota.String())
		}
		if p.DatabaseStorage.Cmp(max) > 0 || p.DatabaseStorage.Cmp(v1alpha1.MinDatabaseStorage) < 0 {
			t.Errorf("plan %s: its own database size %s is outside [%s, %s]", plan, p.DatabaseStorage.String(), v1alpha1.MinDatabaseStorage.String(), max.String())
		}
	}
}
