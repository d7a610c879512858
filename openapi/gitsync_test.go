package openapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/openapi"
)

type recordedSync struct{ st openapi.GitSync }

func (r recordedSync) GitSync(context.Context) (*openapi.GitSync, error) { return &r.st, nil }

// TestGitSyncDetailsAreForAdmins: everyone learns when and what was synced;
// the repository, other users' store names and the problems in their
// manifests are for admins only.
func TestGitSyncDetailsAreForAdmins(t *testing.T) {
	now := time.Now().UTC()
	st := openapi.GitSync{Repository: "https://git.example.com/platform/stores.git", Branch: "main", Path: "stores", Commit: "0123abcd",
		SyncedAt: &now, Stores: 3, Applied: []string{"bobs-shop"}, Pruned: []string{"carols-shop"},
		Invalid: []openapi.ManifestProblem{{File: "stores/daves-shop.yaml", Line: 4, Message: "invalid YAML"}}, Error: "refused to prune 5 stores"}
	_, api := newUnitTestAPI(t, options{deps: func(d *openapi.Deps) { d.GitSync = recordedSync{st} }})

	user := api.Get("/api/v1/gitsync", as("alice"))
	if user.Code != http.StatusOK {
		t.Fatalf("a user's gitsync: %d %s", user.Code, user.Body.String())
	}
	for _, secret := range []string{"git.example.com", "bobs-shop", "carols-shop", "daves-shop", "refused"} {
		if strings.Contains(user.Body.String(), secret) {
			t.Errorf("a user's view names %q: %s", secret, user.Body.String())
		}
	}
	if got := decode[openapi.GitSync](t, user); got.Commit != "0123abcd" || got.Stores != 3 {
		t.Errorf("a user's view %+v lacks the commit and count", got)
	}
	admin := decode[openapi.GitSync](t, api.Get("/api/v1/gitsync", as("root"), openapi.GroupsHeader+": admins"))
	if admin.Repository == "" || len(admin.Invalid) != 1 || admin.Error == "" || len(admin.Pruned) != 1 {
		t.Errorf("the admin's view %+v lacks the details", admin)
	}
}
