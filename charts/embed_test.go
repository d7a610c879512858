package charts_test

import (
	"io/fs"
	"os"
	"testing"

	"github.com/storefleet/storefleet/charts"
)

// TestMedusaStoreEmbedsEveryTemplate: the binary's store chart has every
// template of the directory, _helpers.tpl included (go:embed leaves out
// files starting with _ unless told all:).
func TestMedusaStoreEmbedsEveryTemplate(t *testing.T) {
	entries, err := os.ReadDir("medusa-store/templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := fs.Stat(charts.MedusaStore(), "templates/"+e.Name()); err != nil {
			t.Errorf("templates/%s is not embedded: %v", e.Name(), err)
		}
	}
}
