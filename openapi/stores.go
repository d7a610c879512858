package openapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// +kubebuilder:rbac:groups=storefleet.dev,resources=stores,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// StoreReader reads stores the way every API read does: from memory.
type StoreReader interface {
	// Get returns the named store, or nil when there is none.
	Get(ctx context.Context, name string) (*v1alpha1.Store, error)
	// List returns owner's stores, or every store when owner is empty. The
	// objects are shared with the cache: callers must not modify them.
	List(ctx context.Context, owner string) ([]v1alpha1.Store, error)
}

// Intents delivers what a user asked for. Writing the Store to the cluster
// is one implementation (ClusterIntents); committing it to the stores repo
// is another (the Git intent: gitsync's Writer, adapted by
// internal/gitintent and wired by cmd/storefleet).
//
// Errors: Create returns an error wrapping ErrExists when the name is taken;
// an *Error is answered as its Kind says (KindInvalid for a store the
// cluster refuses); any other error is internal.
type Intents interface {
	// Create delivers a new store.
	Create(ctx context.Context, s *v1alpha1.Store) (*v1alpha1.Store, error)
	// Delete withdraws a store; one already gone is not an error.
	Delete(ctx context.Context, s *v1alpha1.Store) error
	// Deferred reports whether what Create and Delete deliver reaches the
	// cluster only later, with a sync of the stores repo: a create is then
	// pending (answered 202; the store reads Pending until synced), and a
	// store the cluster does not show yet can still be withdrawn.
	Deferred() bool
}

// ErrExists is the error (wrapped) of an Intents.Create whose name is taken:
// the store exists in the cluster, or the stores repo declares it already.
// The API answers with that store when it is the caller's, else 409.
var ErrExists = errors.New("store already exists")

const ownerIndex = "spec.owner"

// StoreCache is an informer cache of Store objects, indexed by owner.
type StoreCache struct {
	cache cache.Cache
}

// NewStoreCache prepares a cache of Stores; Start runs it.
func NewStoreCache(cfg *rest.Config, scheme *runtime.Scheme) (*StoreCache, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{&v1alpha1.Store{}: {}}})
	if err != nil {
		return nil, err
	}
	err = c.IndexField(context.Background(), &v1alpha1.Store{}, ownerIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Store).Spec.Owner}
	})
	if err != nil {
		return nil, err
	}
	return &StoreCache{cache: c}, nil
}

// Start runs the informer until ctx ends and waits for its first sync.
func (c *StoreCache) Start(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- c.cache.Start(ctx) }()
	if _, err := c.cache.GetInformer(ctx, &v1alpha1.Store{}); err != nil {
		return err
	}
	if !c.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-errc:
			return fmt.Errorf("store cache: %w", err)
		default:
			return fmt.Errorf("store cache did not sync")
		}
	}
	return nil
}

// Synced reports whether the informer has caught up with the API server.
func (c *StoreCache) Synced() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	return c.cache.WaitForCacheSync(ctx)
}

// Cache exposes the informer cache, e.g. for event streams watching Stores.
func (c *StoreCache) Cache() cache.Cache { return c.cache }

func (c *StoreCache) Get(ctx context.Context, name string) (*v1alpha1.Store, error) {
	var s v1alpha1.Store
	err := c.cache.Get(ctx, client.ObjectKey{Name: name}, &s, &client.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return &s, err
}

func (c *StoreCache) List(ctx context.Context, owner string) ([]v1alpha1.Store, error) {
	var l v1alpha1.StoreList
	opts := []client.ListOption{client.UnsafeDisableDeepCopy}
	if owner != "" {
		opts = append(opts, client.MatchingFields{ownerIndex: owner})
	}
	if err := c.cache.List(ctx, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// ClusterIntents writes Store objects to the cluster (--intent=kubernetes).
type ClusterIntents struct {
	Client client.Client
}

// Create writes the Store; the API server's AlreadyExists is ErrExists and
// its Invalid (the CRD's rules) an *Error of KindInvalid.
func (k ClusterIntents) Create(ctx context.Context, s *v1alpha1.Store) (*v1alpha1.Store, error) {
	s = s.DeepCopy()
	switch err := k.Client.Create(ctx, s); {
	case apierrors.IsAlreadyExists(err):
		return nil, fmt.Errorf("%w: %w", ErrExists, err)
	case apierrors.IsInvalid(err):
		return nil, errorf(KindInvalid, "%s", apiServerMessage(err))
	case err != nil:
		return nil, err
	}
	return s, nil
}

// Delete deletes the Store (the one read: same UID).
func (k ClusterIntents) Delete(ctx context.Context, s *v1alpha1.Store) error {
	uid := s.UID
	err := k.Client.Delete(ctx, s, client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// apiServerMessage is the API server's own validation message: the causes it
// lists, without the Go error's prefixes.
func apiServerMessage(err error) string {
	se, ok := err.(*apierrors.StatusError)
	if !ok || se.ErrStatus.Details == nil || len(se.ErrStatus.Details.Causes) == 0 {
		return err.Error()
	}
	var parts []string
	for _, c := range se.ErrStatus.Details.Causes {
		parts = append(parts, strings.TrimSpace(c.Field+": "+c.Message))
	}
	return strings.Join(parts, "; ")
}

// Deferred is false: the Store is in the cluster once Create returns.
func (ClusterIntents) Deferred() bool { return false }
