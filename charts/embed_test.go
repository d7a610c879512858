package charts_test

import (
	"io/fs"
	"os"
	"testing"

	"github.com/storefleet/storefleet/charts"
)

// TestStoreChartIsEmbeddedWhole: every file of the store chart but its
// images/ is in the binary — _helpers.tpl included, which a plain embed
// pattern would leave out (names starting with _ need all:).
func TestStoreChartIsEmbeddedWhole(t *testing.T) {
	embedded := charts.MedusaStore()
	err := fs.WalkDir(os.DirFS("medusa-store"), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == "images" {
			if err == nil {
				err = fs.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		if _, err := fs.Stat(embedded, path); err != nil {
			t.Errorf("%s is not embedded: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(embedded, "images"); err == nil {
		t.Error("images/ is embedded")
	}
}
