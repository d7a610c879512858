package charts_test

import (
	"encoding/json"
	"os"
	"testing"

	"sigs.k8s.io/yaml"
)

// The chart runs the Medusa version its image pins: medusa/package.json is
// the one place, and the chart's tags follow it.
func TestChartImageTagsFollowTheMedusaPin(t *testing.T) {
	data, err := os.ReadFile("medusa-store/images/medusa/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatal(err)
	}
	pin := pkg.Dependencies["@medusajs/medusa"]
	valuesData, err := os.ReadFile("medusa-store/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Images map[string]any `json:"images"`
	}
	if err := yaml.Unmarshal(valuesData, &values); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"medusa", "storefront"} {
		img, _ := values.Images[name].(map[string]any)
		if img["tag"] != pin {
			t.Errorf("images.%s.tag = %v, want the Medusa pin %s of images/medusa/package.json", name, img["tag"], pin)
		}
	}
}
