package openapi_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/storefleet/storefleet/openapi"
)

// TestCommittedSpecIsCurrent: openapi.yaml is what the code describes (make
// generate writes it; make verify checks the same in CI).
func TestCommittedSpecIsCurrent(t *testing.T) {
	want, err := openapi.Spec()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("openapi/openapi.yaml is stale: run make generate")
	}
}
