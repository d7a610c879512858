package openapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/openapi"
)

// TestMutationsTakeJSONOnly: a body that is not declared JSON is refused
// (a cross-site form or text/plain post needs no CORS preflight), and
// nothing is created.
func TestMutationsTakeJSONOnly(t *testing.T) {
	mem := &memStores{}
	_, api := newUnitTestAPI(t, options{deps: func(d *openapi.Deps) { d.Stores, d.Intents = mem, mem }})
	body := `{"name":"formed","engine":"medusa"}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		h := "Content-Type: " + ct
		rec := api.Post("/api/v1/stores", as("alice"), h, strings.NewReader(body))
		p := problem(t, rec, http.StatusUnsupportedMediaType, "unsupported-media-type")
		if !strings.Contains(p.Detail, "must be JSON") {
			t.Errorf("%q: detail %q", ct, p.Detail)
		}
	}
	if mem.created != 0 {
		t.Fatalf("%d stores created from non-JSON bodies", mem.created)
	}
	if rec := api.Post("/api/v1/stores", as("alice"), "Content-Type: application/json; charset=utf-8", strings.NewReader(body)); rec.Code != http.StatusCreated {
		t.Fatalf("a JSON body: %d %s", rec.Code, rec.Body.String())
	}
	// Without a body (delete, retry) no content type is needed.
	if rec := api.Delete("/api/v1/stores/formed", as("alice")); rec.Code == http.StatusUnsupportedMediaType {
		t.Fatalf("a delete without a body was refused: %s", rec.Body.String())
	}
}

// failingIntents is a cluster whose API server fails with err.
type failingIntents struct {
	memStores
	err error
}

func (f *failingIntents) Create(context.Context, *v1alpha1.Store) (*v1alpha1.Store, error) {
	return nil, f.err
}

// TestDependencyFailuresAre503: the API server timing out, throttling or
// refusing connections is a 503 with Retry-After, never a 500.
func TestDependencyFailuresAre503(t *testing.T) {
	gr := schema.GroupResource{Group: "storefleet.dev", Resource: "stores"}
	for name, err := range map[string]error{
		"server timeout":     apierrors.NewServerTimeout(gr, "create", 1),
		"throttled":          apierrors.NewTooManyRequests("slow down", 1),
		"unavailable":        apierrors.NewServiceUnavailable("etcd leader changed"),
		"connection refused": fmt.Errorf("Post \"https://10.96.0.1/apis\": dial tcp: %w", syscall.ECONNREFUSED),
	} {
		t.Run(name, func(t *testing.T) {
			f := &failingIntents{err: err}
			_, api := newUnitTestAPI(t, options{deps: func(d *openapi.Deps) { d.Stores, d.Intents = f, f }})
			rec := api.Post("/api/v1/stores", as("alice"), map[string]any{"name": "shop", "engine": "medusa"})
			problem(t, rec, http.StatusServiceUnavailable, "unavailable")
			if rec.Header().Get("Retry-After") == "" {
				t.Errorf("no Retry-After on a 503")
			}
		})
	}
}
