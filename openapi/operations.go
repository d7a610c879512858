package openapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

type CreateStoreInput struct {
	Body CreateStoreRequest
}

type CreateStoreOutput struct {
	Status   int
	Location string `header:"Location" doc:"The store's address in this API."`
	Body     Store
}

type StoreNameInput struct {
	Name string `path:"name" minLength:"1" maxLength:"40" pattern:"^[a-z]([-a-z0-9]*[a-z0-9])?$" patternDescription:"a store name" example:"acme"`
}

type StoreOutput struct {
	Body Store
}

type ListStoresInput struct {
	Phase  v1alpha1.Phase `query:"phase" doc:"Only stores in this phase."`
	Limit  int            `query:"limit" minimum:"1" maximum:"500" default:"50" doc:"Page size."`
	Cursor string         `query:"cursor" maxLength:"40" doc:"The next value of the previous page."`
	All    bool           `query:"all" doc:"Every user's stores; for admins only."`
}

type ListStoresOutput struct {
	Body StoreList
}

type HealthOutput struct {
	Body Health
}

// storeSecurity: either scheme, whichever the server runs with (--auth).
var storeSecurity = []map[string][]string{{"userHeader": {}}, {"bearer": {}}}

// public operations need no identity.
var public = []map[string][]string{{}}

func (s *Server) register() {
	read := huma.Middlewares{s.authenticate}
	mutate := huma.Middlewares{s.audit, s.requireJSON, s.authenticateAndLimit}
	common := []int{http.StatusUnauthorized, http.StatusUnprocessableEntity}

	huma.Register(s.api, huma.Operation{
		OperationID: "create-store", Method: http.MethodPost, Path: APIPrefix + "/stores",
		Summary:     "Create a store",
		Description: "Asks for a new store owned by the caller. Creating a store that the caller already owns returns it (200) instead of creating another; a name taken by another user is a 409. With the Git intent (--intent=git) the store's manifest is committed to the stores repo (or a pull request opened) and the answer is 202: the store reads Pending, with source.commit or source.pullRequest, until the sync brings it into the cluster.",
		Responses: map[string]*huma.Response{
			"200": {Description: "The caller already has this store."},
			"202": {Description: "Committed to the stores repo (Git intent): the store is Pending until synced."},
		},
		Tags: []string{"stores"}, Security: storeSecurity, Middlewares: mutate,
		DefaultStatus: http.StatusCreated, MaxBodyBytes: s.cfg.MaxBodyBytes,
		Errors: append(common, http.StatusBadRequest, http.StatusForbidden, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests),
	}, s.createStore)

	huma.Register(s.api, huma.Operation{
		OperationID: "list-stores", Method: http.MethodGet, Path: APIPrefix + "/stores",
		Summary:     "List stores",
		Description: "The caller's stores by name, a page at a time (admins may ask for everyone's).",
		Tags:        []string{"stores"}, Security: storeSecurity, Middlewares: read, Errors: common,
	}, s.listStores)

	huma.Register(s.api, huma.Operation{
		OperationID: "get-store", Method: http.MethodGet, Path: APIPrefix + "/stores/{name}",
		Summary:     "Get a store",
		Description: "Phase, conditions, activity, URLs, drift, release, source and diagnosis of one store.",
		Tags:        []string{"stores"}, Security: storeSecurity, Middlewares: read,
		Errors: append(common, http.StatusNotFound),
	}, s.getStore)

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-store", Method: http.MethodDelete, Path: APIPrefix + "/stores/{name}",
		Summary:     "Delete a store",
		Description: "Starts deleting the store with everything it runs and stores. The store shows Deleting until it is gone; asking again meanwhile is fine. With the Git intent a store not synced yet is withdrawn: its pull request is closed unmerged (or its removal committed), and the answer's Ready condition (reason Withdrawn) says which.",
		Tags:        []string{"stores"}, Security: storeSecurity, Middlewares: mutate,
		DefaultStatus: http.StatusAccepted,
		Errors:        append(common, http.StatusNotFound, http.StatusTooManyRequests),
	}, s.deleteStore)

	huma.Register(s.api, huma.Operation{
		OperationID: "retry-store", Method: http.MethodPost, Path: APIPrefix + "/stores/{name}/retry",
		Summary:     "Retry a store",
		Description: "Asks the operator to try again now, also after the store has Failed for good.",
		Tags:        []string{"stores"}, Security: storeSecurity, Middlewares: mutate,
		DefaultStatus: http.StatusAccepted,
		Errors:        append(common, http.StatusNotFound, http.StatusTooManyRequests),
	}, s.retryStore)

	s.registerAdminInvite(mutate, common)
	s.registerGitSync()

	huma.Register(s.api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz",
		Summary: "Liveness", Description: "200 while the process serves.", Tags: []string{"platform"}, Security: public,
	}, func(context.Context, *struct{}) (*HealthOutput, error) {
		return &HealthOutput{Body: Health{Status: "ok"}}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz",
		Summary: "Readiness", Description: "200 when the store cache is synced and the Kubernetes API server answers.",
		Tags: []string{"platform"}, Security: public, Errors: []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*HealthOutput, error) {
		if err := s.deps.Ready(ctx); err != nil {
			s.log.Warn("Not ready", "error", err)
			return nil, problemFor(ctx, s.log, errorf(KindUnavailable, "not ready: %v", err))
		}
		return &HealthOutput{Body: Health{Status: "ok"}}, nil
	})
}

func (s *Server) fail(ctx context.Context, err error) error { return problemFor(ctx, s.log, err) }

func notFound(name string) *Error { return errorf(KindNotFound, "store %q not found", name) }

// visible reports whether id may read s.
func visible(s *v1alpha1.Store, id Identity) bool { return s.Spec.Owner == id.User || id.Admin }

func (s *Server) createStore(ctx context.Context, in *CreateStoreInput) (*CreateStoreOutput, error) {
	id, req := identityFrom(ctx), in.Body
	auditStore(ctx, req.Name)
	// The hosts must be the platform's: another domain would let a user
	// claim someone else's host (and certificate) on the shared ingress.
	if err := v1alpha1.CheckHost(req.Name, req.Domain, s.cfg.AllowedDomains); err != nil {
		p := problemFor(ctx, s.log, errorf(KindInvalid, "validation failed"))
		p.Errors = []*huma.ErrorDetail{{Location: "body.domain", Message: err.Error(), Value: req.Domain}}
		return nil, p
	}
	if existing, err := s.deps.Stores.Get(ctx, req.Name); err != nil {
		return nil, s.fail(ctx, err)
	} else if existing != nil {
		return s.existing(ctx, existing, id)
	}
	// Bigger plans cost the platform more: the operator decides per group
	// who may pick which (--plans-by-group). Checked after the idempotent
	// answer: repeating an earlier create creates nothing.
	plan := v1alpha1.Plan(req.Plan)
	if plan == "" {
		plan = v1alpha1.PlanSmall
	}
	if why := s.cfg.Plans.refusal(id, plan); why != "" {
		p := problemFor(ctx, s.log, errorf(KindPlanNotAllowed, "%s", why))
		p.Errors = []*huma.ErrorDetail{{Location: "body.plan", Message: why, Value: string(plan)}}
		return nil, p
	}

	recent, unlock, err := s.deps.Lock.Lock(ctx, id.User)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	createdName := ""
	// Released in the background: the response need not wait for it.
	defer func() { go unlock(createdName) }()
	owned, err := s.deps.Stores.List(ctx, id.User)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if n := activeStores(owned, recent); n >= s.cfg.MaxStoresPerUser {
		if existing := find(owned, req.Name); existing != nil {
			return s.existing(ctx, existing, id)
		}
		if slices.Contains(recent, req.Name) {
			// Created through another replica moments ago: a repeated request.
			if existing, err := s.liveStore(ctx, req.Name); err == nil && existing != nil {
				return s.existing(ctx, existing, id)
			}
		}
		s.metrics.quotaRejected.Inc()
		return nil, s.fail(ctx, &Error{Kind: KindQuotaExceeded, Limit: s.cfg.MaxStoresPerUser,
			Message: "you have reached the limit of stores per user; delete one to create another"})
	}

	store := &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{
			Name:   req.Name,
			Labels: map[string]string{v1alpha1.OwnerLabel: v1alpha1.OwnerLabelValue(id.User)},
			Annotations: map[string]string{
				v1alpha1.ChannelAnnotation:     string(v1alpha1.ChannelAPI),
				v1alpha1.RequestedByAnnotation: id.User,
				v1alpha1.RequestIDAnnotation:   requestIDFrom(ctx),
			},
		},
		Spec: v1alpha1.StoreSpec{Engine: v1alpha1.Engine(req.Engine), Owner: id.User, Plan: plan, Domain: req.Domain},
	}
	created, err := s.deps.Intents.Create(ctx, store)
	switch {
	case errors.Is(err, ErrExists):
		// Someone else's create of the same name won between our read and write.
		existing, gerr := s.liveStore(ctx, req.Name)
		if gerr == nil && existing == nil {
			// Declared in the stores repo but not synced yet (git intent).
			existing, gerr = s.deps.Stores.Get(ctx, req.Name)
		}
		if gerr != nil || existing == nil {
			return nil, s.fail(ctx, errorf(KindConflict, "store %q was just created by another request", req.Name))
		}
		return s.existing(ctx, existing, id)
	case err != nil:
		return nil, s.fail(ctx, err)
	}
	createdName = req.Name
	s.metrics.created.Inc()
	if s.deps.Intents.Deferred() {
		// Committed to the stores repo: the store exists once it is synced.
		view, err := s.deps.Stores.Get(ctx, req.Name)
		if err != nil || view == nil {
			view = created
		}
		return &CreateStoreOutput{Status: http.StatusAccepted, Location: APIPrefix + "/stores/" + req.Name, Body: StoreOf(view)}, nil
	}
	s.awaitCached(ctx, req.Name)
	return &CreateStoreOutput{Status: http.StatusCreated, Location: APIPrefix + "/stores/" + req.Name, Body: StoreOf(created)}, nil
}

// existing answers a create whose name exists: the caller's own store is
// returned as it is (idempotent create); another user's name is taken.
func (s *Server) existing(ctx context.Context, st *v1alpha1.Store, id Identity) (*CreateStoreOutput, error) {
	if st.Spec.Owner != id.User {
		return nil, s.fail(ctx, errorf(KindConflict, "the name %q is taken; choose another", st.Name))
	}
	return &CreateStoreOutput{Status: http.StatusOK, Location: APIPrefix + "/stores/" + st.Name, Body: StoreOf(st)}, nil
}

func (s *Server) liveStore(ctx context.Context, name string) (*v1alpha1.Store, error) {
	var st v1alpha1.Store
	err := s.deps.Client.Get(ctx, client.ObjectKey{Name: name}, &st)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// activeStores counts a user's stores against the quota: those in the cache
// that are not being deleted (a deleting store no longer counts), plus the
// ones created under the user's lock recently that the cache has not seen
// yet (another replica's creates).
func activeStores(owned []v1alpha1.Store, recent []string) int {
	n := 0
	seen := map[string]bool{}
	for i := range owned {
		seen[owned[i].Name] = true
		if owned[i].DeletionTimestamp.IsZero() {
			n++
		}
	}
	for _, name := range recent {
		if !seen[name] {
			seen[name] = true
			n++
		}
	}
	return n
}

func find(stores []v1alpha1.Store, name string) *v1alpha1.Store {
	for i := range stores {
		if stores[i].Name == name {
			return &stores[i]
		}
	}
	return nil
}

// awaitCached waits briefly until this replica's cache holds a store it just
// created, so the caller's next read sees it.
func (s *Server) awaitCached(ctx context.Context, name string) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := s.deps.Stores.Get(ctx, name); err != nil || st != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *Server) listStores(ctx context.Context, in *ListStoresInput) (*ListStoresOutput, error) {
	id := identityFrom(ctx)
	owner := id.User
	if in.All {
		if !id.Admin {
			return nil, s.fail(ctx, errorf(KindInvalid, "all=true is for admins only"))
		}
		owner = ""
	}
	stores, err := s.deps.Stores.List(ctx, owner)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	slices.SortFunc(stores, func(a, b v1alpha1.Store) int { return strings.Compare(a.Name, b.Name) })
	out := StoreList{Items: []StoreSummary{}}
	for i := range stores {
		st := &stores[i]
		if st.Name <= in.Cursor || (in.Phase != "" && phaseOf(st) != in.Phase) {
			continue
		}
		if len(out.Items) == in.Limit {
			out.Next = out.Items[len(out.Items)-1].Name
			break
		}
		out.Items = append(out.Items, summaryOf(st))
	}
	return &ListStoresOutput{Body: out}, nil
}

func (s *Server) getStore(ctx context.Context, in *StoreNameInput) (*StoreOutput, error) {
	st, err := s.deps.Stores.Get(ctx, in.Name)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if st == nil || !visible(st, identityFrom(ctx)) {
		return nil, s.fail(ctx, notFound(in.Name))
	}
	return &StoreOutput{Body: StoreOf(st)}, nil
}

// ownedLive reads a store for a change by its owner; anyone else's store is
// not found, exactly like one that does not exist.
func (s *Server) ownedLive(ctx context.Context, name string) (*v1alpha1.Store, error) {
	auditStore(ctx, name)
	st, err := s.liveStore(ctx, name)
	if err != nil {
		return nil, err
	}
	if st == nil && s.deps.Intents.Deferred() {
		// Committed to the stores repo, not synced yet: withdrawing it is
		// still a change of the repo.
		if st, err = s.deps.Stores.Get(ctx, name); err != nil {
			return nil, err
		}
	}
	if st == nil || st.Spec.Owner != identityFrom(ctx).User {
		return nil, notFound(name)
	}
	return st, nil
}

func (s *Server) deleteStore(ctx context.Context, in *StoreNameInput) (*StoreOutput, error) {
	st, err := s.ownedLive(ctx, in.Name)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if st.DeletionTimestamp.IsZero() {
		if err := s.deps.Intents.Delete(ctx, st); err != nil {
			return nil, s.fail(ctx, err)
		}
		now := metav1.Now()
		st.DeletionTimestamp = &now
		if st.UID == "" {
			withdrawn(st)
		}
	}
	return &StoreOutput{Body: StoreOf(st)}, nil
}

func (s *Server) retryStore(ctx context.Context, in *StoreNameInput) (*StoreOutput, error) {
	st, err := s.ownedLive(ctx, in.Name)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	patch := []byte(`{"metadata":{"annotations":{"` + v1alpha1.RetryAnnotation + `":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}}}`)
	if err := s.deps.Client.Patch(ctx, st, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, s.fail(ctx, notFound(in.Name))
		}
		return nil, s.fail(ctx, err)
	}
	return &StoreOutput{Body: StoreOf(st)}, nil
}
