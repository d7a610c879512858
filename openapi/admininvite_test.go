package openapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/openapi"
)

// issuedInvites stands in for a store's Medusa (test/store asks a real one):
// it records what the API asked for and answers with a link.
type issuedInvites struct {
	mu    sync.Mutex
	asked []string
	err   error
}

func (i *issuedInvites) Invite(_ context.Context, st *v1alpha1.Store, email, base string) (*openapi.AdminInvite, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.asked = append(i.asked, st.Name+" "+email+" "+base)
	if i.err != nil {
		return nil, i.err
	}
	return &openapi.AdminInvite{Kind: "invite", Email: email, URL: base + "/app/invite?token=secret-token", ExpiresAt: time.Now().Add(24 * time.Hour)}, nil
}

func TestAdminInviteIsTheOwnersAlone(t *testing.T) {
	store := func(name, owner string, ready bool) *v1alpha1.Store {
		s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: owner}}
		if ready {
			s.Status.Phase = v1alpha1.PhaseReady
			s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Succeeded"}}
			s.Status.URLs = &v1alpha1.StoreURLs{Storefront: "http://" + name + ".localhost:8080", Admin: "http://" + name + ".localhost:8080/app"}
		}
		return s
	}
	scheme := runtime.NewScheme()
	_ = v1alpha1.AddToScheme(scheme)
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		store("shop", "alice@example.com", true), store("starting", "alice@example.com", false), store("plain", "alice", true)).Build()
	inviter := &issuedInvites{}
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	_, api := newUnitTestAPI(t, options{cfg: openapi.Config{Log: log}, deps: func(d *openapi.Deps) { d.Client, d.Admin = cl, inviter }})

	rec := api.Post("/api/v1/stores/shop/admin-invite", as("alice@example.com"), "Content-Type: application/json", map[string]any{})
	if rec.Code != http.StatusOK {
		t.Fatalf("the owner's invite: %d %s", rec.Code, rec.Body.String())
	}
	inv := decode[openapi.AdminInvite](t, rec)
	if inv.Email != "alice@example.com" || !strings.HasPrefix(inv.URL, "http://shop.localhost:8080/app/invite?token=") || inv.Kind != "invite" {
		t.Errorf("invite %+v, want a link to the store's own admin for the owner's e-mail", inv)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store: the link is a credential", cc)
	}

	// Anyone else, admins included, is told the store does not exist.
	problem(t, api.Post("/api/v1/stores/shop/admin-invite", as("bob@example.com"), map[string]any{}), http.StatusNotFound, "not-found")
	problem(t, api.Post("/api/v1/stores/shop/admin-invite", as("root@example.com"), openapi.GroupsHeader+": admins", map[string]any{}), http.StatusNotFound, "not-found")
	// Not Ready: nothing to log in to yet.
	p := problem(t, api.Post("/api/v1/stores/starting/admin-invite", as("alice@example.com"), map[string]any{}), http.StatusConflict, "not-ready")
	if !strings.Contains(p.Detail, "not Ready") {
		t.Errorf("not-ready detail %q", p.Detail)
	}
	// A user id that is not an e-mail needs one; with one it works.
	p = problem(t, api.Post("/api/v1/stores/plain/admin-invite", as("alice"), map[string]any{}), http.StatusUnprocessableEntity, "invalid")
	if len(p.Errors) != 1 || p.Errors[0].Location != "body.email" {
		t.Errorf("errors %+v, want one at body.email", p.Errors)
	}
	problem(t, api.Post("/api/v1/stores/plain/admin-invite", as("alice"), map[string]any{"email": "not an address"}), http.StatusUnprocessableEntity, "invalid")
	if rec := api.Post("/api/v1/stores/plain/admin-invite", as("alice"), map[string]any{"email": "alice@shop.example"}); rec.Code != http.StatusOK {
		t.Errorf("invite with an e-mail: %d %s", rec.Code, rec.Body.String())
	}
	// A backend that does not answer is a 503 to retry, not a 500.
	inviter.err = fmt.Errorf("%w: connection refused", openapi.ErrStoreUnreachable)
	problem(t, api.Post("/api/v1/stores/shop/admin-invite", as("alice@example.com"), map[string]any{}), http.StatusServiceUnavailable, "unavailable")

	if want := []string{"shop alice@example.com http://shop.localhost:8080", "plain alice@shop.example http://plain.localhost:8080", "shop alice@example.com http://shop.localhost:8080"}; strings.Join(inviter.asked, "|") != strings.Join(want, "|") {
		t.Errorf("the backend was asked %q, want %q", inviter.asked, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "secret-token") {
		t.Errorf("the link reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"operation":"create-admin-invite"`) || !strings.Contains(logs.String(), `"email":"alice@example.com"`) {
		t.Errorf("no audit line naming the operation and the e-mail:\n%s", logs.String())
	}
}
