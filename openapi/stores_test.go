package openapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

func TestCreateGetListStore(t *testing.T) {
	_, api := newTestAPI(t, options{})
	alice := user(t, "alice")
	cleanup(t, "crud-shop")

	rec := api.Post("/api/v1/stores", as(alice), map[string]any{"name": "crud-shop", "engine": "medusa", "domain": "shops.example.com"})
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	if loc := rec.Header().Get("Location"); loc != "/api/v1/stores/crud-shop" {
		t.Errorf("Location %q", loc)
	}
	created := decode[openapi.Store](t, rec)
	if created.Name != "crud-shop" || created.Owner != alice || created.Plan != "small" || created.Phase != "Pending" || created.Domain != "shops.example.com" {
		t.Errorf("created %+v", created.StoreSummary)
	}
	if created.Source == nil || created.Source.Channel != "api" || created.Source.User != alice || created.Source.RequestID != rec.Header().Get(openapi.RequestIDHeader) {
		t.Errorf("source %+v, request id %q", created.Source, rec.Header().Get(openapi.RequestIDHeader))
	}

	// The Store object is the record: owner, origin and label are on it.
	var s v1alpha1.Store
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "crud-shop"}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Spec.Owner != alice || s.Spec.Engine != v1alpha1.EngineMedusa || s.Annotations[v1alpha1.ChannelAnnotation] != "api" || s.Labels[v1alpha1.OwnerLabel] != v1alpha1.OwnerLabelValue(alice) {
		t.Errorf("store object %+v %+v", s.ObjectMeta, s.Spec)
	}

	// Read-your-writes: the next GET (served from the cache) sees it.
	got := decode[openapi.Store](t, api.Get("/api/v1/stores/crud-shop", as(alice)))
	if got.Name != "crud-shop" || got.Conditions == nil || got.Activity == nil {
		t.Errorf("get %+v", got)
	}
	list := decode[openapi.StoreList](t, api.Get("/api/v1/stores", as(alice)))
	if len(list.Items) != 1 || list.Items[0].Name != "crud-shop" || list.Next != "" {
		t.Errorf("list %+v", list)
	}

	// Idempotent: the same create by the same owner returns the store.
	rec = api.Post("/api/v1/stores", as(alice), map[string]any{"name": "crud-shop", "engine": "medusa"})
	if rec.Code != http.StatusOK || decode[openapi.Store](t, rec).Name != "crud-shop" {
		t.Errorf("repeated create: %d %s", rec.Code, rec.Body.String())
	}
	// The status the operator writes shows through.
	s.Status.Phase = v1alpha1.PhaseReady
	s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "store is ready", LastTransitionTime: metav1.Now()}}
	s.Status.URLs = &v1alpha1.StoreURLs{Storefront: "http://crud-shop.shops.example.com", Admin: "http://crud-shop.shops.example.com/app"}
	s.Status.ActivityLog = []v1alpha1.ActivityEntry{{Timestamp: metav1.Now(), Event: v1alpha1.EventReady, Message: "store is ready"}}
	if err := cluster.Client.Status().Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "GET shows Ready", func() (bool, error) {
		got = decode[openapi.Store](t, api.Get("/api/v1/stores/crud-shop", as(alice)))
		return got.Phase == "Ready", nil
	})
	if !got.Ready || got.URLs == nil || got.URLs.Storefront != "http://crud-shop.shops.example.com" || len(got.Activity) != 1 || got.Activity[0].Event != v1alpha1.EventReady {
		t.Errorf("ready store %+v", got)
	}
	if l := decode[openapi.StoreList](t, api.Get("/api/v1/stores?phase=Pending", as(alice))); len(l.Items) != 0 {
		t.Errorf("phase filter Pending returned %+v", l.Items)
	}
	if l := decode[openapi.StoreList](t, api.Get("/api/v1/stores?phase=Ready", as(alice))); len(l.Items) != 1 {
		t.Errorf("phase filter Ready returned %+v", l.Items)
	}
}

func TestOtherUsersStoreIsNotFound(t *testing.T) {
	_, api := newTestAPI(t, options{})
	alice, bob := user(t, "alice"), user(t, "bob")
	cleanup(t, "alices-shop")
	if rec := api.Post("/api/v1/stores", as(alice), map[string]any{"name": "alices-shop", "engine": "medusa"}); rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	problem(t, api.Get("/api/v1/stores/alices-shop", as(bob)), http.StatusNotFound, "not-found")
	problem(t, api.Delete("/api/v1/stores/alices-shop", as(bob)), http.StatusNotFound, "not-found")
	problem(t, api.Post("/api/v1/stores/alices-shop/retry", as(bob)), http.StatusNotFound, "not-found")
	if l := decode[openapi.StoreList](t, api.Get("/api/v1/stores", as(bob))); len(l.Items) != 0 {
		t.Errorf("bob lists %+v", l.Items)
	}
	// The name is global: bob cannot take it.
	p := problem(t, api.Post("/api/v1/stores", as(bob), map[string]any{"name": "alices-shop", "engine": "medusa"}), http.StatusConflict, "conflict")
	if !strings.Contains(p.Detail, "taken") {
		t.Errorf("conflict detail %q", p.Detail)
	}
	// all=true is for admins; an admin sees alice's store.
	problem(t, api.Get("/api/v1/stores?all=true", as(bob)), http.StatusUnprocessableEntity, "invalid")
	l := decode[openapi.StoreList](t, api.Get("/api/v1/stores?all=true", as(bob), openapi.GroupsHeader+": staff, admins"))
	found := false
	for _, it := range l.Items {
		found = found || it.Name == "alices-shop"
	}
	if !found {
		t.Errorf("admin list misses alices-shop: %+v", l.Items)
	}
	// Nothing changed for alice.
	if rec := api.Get("/api/v1/stores/alices-shop", as(alice)); rec.Code != http.StatusOK || decode[openapi.Store](t, rec).Phase != "Pending" {
		t.Errorf("alice's store after bob's attempts: %d %s", rec.Code, rec.Body.String())
	}
}

func TestDeleteShowsDeletingAndIsRepeatable(t *testing.T) {
	_, api := newTestAPI(t, options{})
	alice := user(t, "alice")
	cleanup(t, "doomed")
	if rec := api.Post("/api/v1/stores", as(alice), map[string]any{"name": "doomed", "engine": "medusa"}); rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	// A finalizer stands in for the operator, which holds a store until its
	// namespace is gone.
	var s v1alpha1.Store
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "doomed"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Finalizers = []string{v1alpha1.Finalizer}
	if err := cluster.Client.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		rec := api.Delete("/api/v1/stores/doomed", as(alice))
		if rec.Code != http.StatusAccepted || decode[openapi.Store](t, rec).Phase != "Deleting" {
			t.Fatalf("delete #%d: %d %s", i+1, rec.Code, rec.Body.String())
		}
	}
	testenv.Eventually(t, 5*time.Second, "GET shows Deleting", func() (bool, error) {
		rec := api.Get("/api/v1/stores/doomed", as(alice))
		return rec.Code == http.StatusOK && decode[openapi.Store](t, rec).Phase == "Deleting", nil
	})
	// A deleting store no longer counts against the quota, but its name stays taken.
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "doomed"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Finalizers = nil
	if err := cluster.Client.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "doomed")
	problem(t, api.Get("/api/v1/stores/doomed", as(alice)), http.StatusNotFound, "not-found")
	problem(t, api.Delete("/api/v1/stores/doomed", as(alice)), http.StatusNotFound, "not-found")
}

func TestRetrySetsTheAnnotation(t *testing.T) {
	_, api := newTestAPI(t, options{})
	alice := user(t, "alice")
	cleanup(t, "retry-me")
	api.Post("/api/v1/stores", as(alice), map[string]any{"name": "retry-me", "engine": "medusa"})
	if rec := api.Post("/api/v1/stores/retry-me/retry", as(alice)); rec.Code != http.StatusAccepted {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body.String())
	}
	var s v1alpha1.Store
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "retry-me"}, &s); err != nil {
		t.Fatal(err)
	}
	v := s.Annotations[v1alpha1.RetryAnnotation]
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		t.Fatalf("retry annotation %q: %v", v, err)
	}
	// A second retry is a new request: a new value.
	time.Sleep(2 * time.Millisecond)
	api.Post("/api/v1/stores/retry-me/retry", as(alice))
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "retry-me"}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Annotations[v1alpha1.RetryAnnotation] == v {
		t.Errorf("second retry kept the value %q", v)
	}
}

func TestListPages(t *testing.T) {
	_, api := newTestAPI(t, options{cfg: openapi.Config{MaxStoresPerUser: 10}})
	alice := user(t, "alice")
	names := []string{"page-a", "page-b", "page-c", "page-d", "page-e"}
	cleanup(t, names...)
	for _, n := range names {
		if rec := api.Post("/api/v1/stores", as(alice), map[string]any{"name": n, "engine": "medusa"}); rec.Code != http.StatusCreated {
			t.Fatalf("create %s: %d", n, rec.Code)
		}
	}
	var seen []string
	cursor := ""
	for range 4 {
		l := decode[openapi.StoreList](t, api.Get("/api/v1/stores?limit=2&cursor="+cursor, as(alice)))
		for _, it := range l.Items {
			seen = append(seen, it.Name)
		}
		if cursor = l.Next; cursor == "" {
			break
		}
	}
	if strings.Join(seen, ",") != strings.Join(names, ",") {
		t.Errorf("pages gave %v, want %v", seen, names)
	}
}

func TestValidationReportsEveryError(t *testing.T) {
	mem := &memStores{}
	_, api := newUnitTestAPI(t, options{deps: func(d *openapi.Deps) { d.Stores, d.Intents = mem, mem }})
	alice := user(t, "alice")
	cases := []struct {
		name      string
		body      any
		status    int
		code      string
		locations []string
		contains  string
	}{
		{name: "all fields wrong at once", body: map[string]any{"name": "Bad_Name", "engine": "magento", "plan": "huge", "domain": "UPPER..case"},
			status: 422, code: "invalid", locations: []string{"body.name", "body.engine", "body.plan", "body.domain"}, contains: "lowercase letters"},
		{name: "reserved name", body: map[string]any{"name": "admin", "engine": "medusa"},
			status: 422, code: "invalid", locations: []string{"body.name"}, contains: "reserved"},
		{name: "domain outside the platform's", body: map[string]any{"name": "fine", "engine": "medusa", "domain": "example.com"},
			status: 422, code: "invalid", locations: []string{"body.domain"}, contains: `domain \"example.com\" is not one of the platform's domains (localtest.me, shops.example.com)`},
		{name: "subdomain of the platform's", body: map[string]any{"name": "fine", "engine": "medusa", "domain": "grafana.localtest.me"},
			status: 422, code: "invalid", locations: []string{"body.domain"}, contains: "not one of the platform's domains"},
		{name: "platform host", body: map[string]any{"name": "grafana", "engine": "medusa"},
			status: 422, code: "invalid", locations: []string{"body.name"}, contains: "reserved"},
		{name: "too long", body: map[string]any{"name": strings.Repeat("a", 41), "engine": "medusa"},
			status: 422, code: "invalid", locations: []string{"body.name"}},
		{name: "missing engine", body: map[string]any{"name": "fine"},
			status: 422, code: "invalid", locations: []string{"body"}, contains: "required property engine"},
		{name: "unknown field", body: map[string]any{"name": "fine", "engine": "medusa", "owner": "mallory"},
			status: 422, code: "invalid", locations: []string{"body.owner"}},
		{name: "malformed JSON", body: strings.NewReader(`{"name": "fine", `),
			status: 400, code: "malformed"},
		{name: "oversized body", body: strings.NewReader(`{"name": "` + strings.Repeat("a", 64<<10) + `"}`),
			status: 413, code: "too-large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := api.Post("/api/v1/stores", as(alice), "Content-Type: application/json", c.body)
			p := problem(t, rec, c.status, c.code)
			for _, loc := range c.locations {
				found := false
				for _, e := range p.Errors {
					found = found || e.Location == loc
				}
				if !found {
					t.Errorf("no error at %s: %+v", loc, p.Errors)
				}
			}
			if c.contains != "" && !strings.Contains(rec.Body.String(), c.contains) {
				t.Errorf("body lacks %q: %s", c.contains, rec.Body.String())
			}
		})
	}
	// A bad path parameter is a validation problem too, never a 5xx.
	problem(t, api.Get("/api/v1/stores/NOT_A_NAME", as(alice)), 422, "invalid")
	if none, err := mem.List(context.Background(), alice); err != nil || len(none) != 0 {
		t.Errorf("invalid requests created %d stores (%v)", len(none), err)
	}
}

func TestInternalErrorDoesNotLeak(t *testing.T) {
	// A quota lock that fails (as a Lease in a namespace that does not
	// exist does) fails inside the API.
	_, api := newUnitTestAPI(t, options{deps: func(d *openapi.Deps) { d.Lock = failingLock{} }})
	rec := api.Post("/api/v1/stores", as(user(t, "alice")), map[string]any{"name": "never", "engine": "medusa"})
	p := problem(t, rec, http.StatusInternalServerError, "internal")
	if strings.Contains(rec.Body.String(), "no-such-namespace") || strings.Contains(rec.Body.String(), "lease") {
		t.Errorf("internal cause leaked: %s", rec.Body.String())
	}
	if !strings.Contains(p.Detail, "requestId") {
		t.Errorf("detail %q does not point to the request id", p.Detail)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ready := false
	_, api := newUnitTestAPI(t, options{deps: func(d *openapi.Deps) {
		d.Ready = func(context.Context) error {
			if !ready {
				return huma.Error503ServiceUnavailable("cache not synced")
			}
			return nil
		}
	}})
	if rec := api.Get("/healthz"); rec.Code != 200 {
		t.Errorf("healthz %d", rec.Code)
	}
	problem(t, api.Get("/readyz"), http.StatusServiceUnavailable, "unavailable")
	ready = true
	if rec := api.Get("/readyz"); rec.Code != 200 {
		t.Errorf("readyz %d", rec.Code)
	}
}

// failingLock fails the way a LeaseLock in a missing namespace does.
type failingLock struct{}

func (failingLock) Lock(context.Context, string) ([]string, func(string), error) {
	return nil, nil, errors.New(`get lease no-such-namespace/storefleet-user-x: namespaces "no-such-namespace" not found`)
}
