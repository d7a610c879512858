package openapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/openapi"
)

// newUnitServer serves the API from memory, without a cluster: for the pure
// tests, whose requests are answered before the handlers reach the cluster
// (validation, authentication, problems, the document) or from memStores.
func newUnitServer(t testing.TB, opts options) *openapi.Server {
	t.Helper()
	mem := &memStores{}
	return build(t, opts, openapi.Deps{
		Stores: mem, Intents: mem, Lock: oneReplicaLock{}, Client: fakeClient(t),
		Ready: func(context.Context) error { return nil },
	})
}

// fakeClient is an empty cluster in memory, for what the API reads live.
func fakeClient(t testing.TB) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).Build()
}

// memStores is an in-memory StoreReader and Intents. A name in declared is
// taken without being readable yet, as one the stores repo declares but the
// cluster does not show: Create then makes it readable and says ErrExists.
type memStores struct {
	mu       sync.Mutex
	stores   map[string]*v1alpha1.Store
	declared map[string]*v1alpha1.Store
	deferred bool
	created  int
}

func (m *memStores) Get(_ context.Context, name string) (*v1alpha1.Store, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stores[name], nil
}

func (m *memStores) List(_ context.Context, owner string) ([]v1alpha1.Store, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []v1alpha1.Store
	for _, s := range m.stores {
		if owner == "" || s.Spec.Owner == owner {
			out = append(out, *s)
		}
	}
	return out, nil
}

func (m *memStores) Create(_ context.Context, s *v1alpha1.Store) (*v1alpha1.Store, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stores == nil {
		m.stores = map[string]*v1alpha1.Store{}
	}
	if d := m.declared[s.Name]; d != nil {
		m.stores[s.Name] = d
		return nil, fmt.Errorf("%w: %s is declared", openapi.ErrExists, s.Name)
	}
	if m.stores[s.Name] != nil {
		return nil, fmt.Errorf("%w: %s", openapi.ErrExists, s.Name)
	}
	s = s.DeepCopy()
	s.CreationTimestamp = metav1.Now()
	m.stores[s.Name] = s
	m.created++
	return s, nil
}

func (m *memStores) Delete(_ context.Context, s *v1alpha1.Store) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.stores, s.Name)
	return nil
}

func (m *memStores) Deferred() bool { return m.deferred }

// oneReplicaLock is the UserLock of a single replica: nothing to wait for,
// nothing created elsewhere.
type oneReplicaLock struct{}

func (oneReplicaLock) Lock(context.Context, string) ([]string, func(string), error) {
	return nil, func(string) {}, nil
}

// TestCreateAnswersByTheIntentsContract: a Deferred create is pending (202),
// and a name the intents say exists is the caller's store (200) or another
// user's (409), whether or not the cluster shows it yet.
func TestCreateAnswersByTheIntentsContract(t *testing.T) {
	owned := func(name, owner string) *v1alpha1.Store {
		return &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: owner}}
	}
	mem := &memStores{deferred: true, declared: map[string]*v1alpha1.Store{
		"alices-declared": owned("alices-declared", "alice"),
		"bobs-declared":   owned("bobs-declared", "bob"),
	}}
	_, api := newUnitTestAPI(t, options{deps: func(d *openapi.Deps) { d.Stores, d.Intents = mem, mem }})
	cases := []struct {
		name   string
		status int
	}{
		{name: "new-shop", status: http.StatusAccepted},
		{name: "new-shop", status: http.StatusOK},
		{name: "alices-declared", status: http.StatusOK},
		{name: "bobs-declared", status: http.StatusConflict},
	}
	for _, c := range cases {
		rec := api.Post("/api/v1/stores", as("alice"), map[string]any{"name": c.name, "engine": "medusa"})
		if rec.Code != c.status {
			t.Errorf("create %s: %d, want %d: %s", c.name, rec.Code, c.status, rec.Body.String())
		}
	}
	if mem.created != 1 {
		t.Errorf("%d stores delivered, want 1", mem.created)
	}
	// Not deferred, the same create is 201.
	_, api = newUnitTestAPI(t, options{})
	if rec := api.Post("/api/v1/stores", as("alice"), map[string]any{"name": "new-shop", "engine": "medusa"}); rec.Code != http.StatusCreated {
		t.Errorf("create with immediate intents: %d, want 201: %s", rec.Code, rec.Body.String())
	}
}
