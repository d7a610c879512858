package gitintent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/openapi"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;delete

// Ledger records the Git intent's creates that the cluster does not show
// yet, one Lease per store name in the platform namespace. A pull request can
// stay open for days: kept in one replica's memory it would not count
// against its owner's quota on the other replicas, nor after a restart, and
// nobody could withdraw it. In the cluster every replica reads it (from an
// informer), and taking the name is one create, so two users racing for a
// name on two replicas get one store and one 409.
type Ledger struct {
	client    client.Client
	cache     cache.Cache
	namespace string
	// forgetting holds the names whose record is being deleted, so reads
	// of a store that has just synced do not each send a delete.
	forgetting sync.Map
}

const (
	// ledgerLabel marks the Leases that are pending-create records.
	ledgerLabel = "storefleet.dev/pending-store"
	// recordAnnotation holds the record as JSON.
	recordAnnotation = "storefleet.dev/pending-create"
	// abandonedAfter is how long a reservation without a commit stays: a
	// replica that died between reserving and committing leaves one.
	abandonedAfter = 5 * time.Minute
	// commitsKept is how long a create committed to the branch (push mode)
	// stays pending: by then the sync has happened or failed visibly in the
	// reader's status. An open pull request stays pending until it is
	// merged and synced, or withdrawn.
	commitsKept = 24 * time.Hour
)

// record is one pending create.
type record struct {
	Store       *v1alpha1.Store `json:"store"`
	Commit      string          `json:"commit,omitempty"`
	PullRequest string          `json:"pullRequest,omitempty"`
	At          time.Time       `json:"at"`
}

// NewLedger prepares the ledger of namespace; Start runs its informer.
func NewLedger(cfg *rest.Config, scheme *runtime.Scheme, cl client.Client, namespace string) (*Ledger, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: {Label: labels.SelectorFromSet(labels.Set{ledgerLabel: "true"})},
		},
	})
	if err != nil {
		return nil, err
	}
	return &Ledger{client: cl, cache: c, namespace: namespace}, nil
}

// Start runs the informer until ctx ends and waits for its first sync.
func (l *Ledger) Start(ctx context.Context) error {
	go func() { _ = l.cache.Start(ctx) }()
	if _, err := l.cache.GetInformer(ctx, &coordinationv1.Lease{}); err != nil {
		return fmt.Errorf("pending-create ledger: %w", err)
	}
	if !l.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("pending-create ledger did not sync")
	}
	return nil
}

func recordName(store string) string { return "storefleet-pending-" + store }

// reserve takes the name for s's owner before anything is committed. fresh
// is false when the owner had taken it already (a repeated create), which
// a failure must then leave in place. Another owner's name is
// openapi.ErrExists.
func (l *Ledger) reserve(ctx context.Context, s *v1alpha1.Store) (fresh bool, err error) {
	lease, err := l.lease(s.Name, record{Store: s, At: time.Now().UTC()})
	if err != nil {
		return false, err
	}
	err = l.client.Create(ctx, lease)
	if !apierrors.IsAlreadyExists(err) {
		return err == nil, err
	}
	var held coordinationv1.Lease
	if err := l.client.Get(ctx, client.ObjectKeyFromObject(lease), &held); err != nil {
		return false, err
	}
	rec, ok := decode(&held)
	switch {
	case ok && rec.Store.Spec.Owner == s.Spec.Owner:
		return false, nil
	case ok && !abandoned(rec, time.Now()):
		return false, fmt.Errorf("%w: a pending create of %q by another user", openapi.ErrExists, s.Name)
	}
	// Abandoned by a replica that died before committing: take it over.
	lease.ResourceVersion = held.ResourceVersion
	return true, l.client.Update(ctx, lease)
}

// record completes the reservation with what the Writer delivered.
func (l *Ledger) record(ctx context.Context, s *v1alpha1.Store) error {
	lease, err := l.lease(s.Name, record{Store: s, At: time.Now().UTC(),
		Commit: s.Annotations[v1alpha1.CommitAnnotation], PullRequest: s.Annotations[v1alpha1.PullRequestAnnotation]})
	if err != nil {
		return err
	}
	var held coordinationv1.Lease
	if err := l.client.Get(ctx, client.ObjectKeyFromObject(lease), &held); err != nil {
		return err
	}
	lease.ResourceVersion = held.ResourceVersion
	if err := l.client.Update(ctx, lease); err != nil {
		return fmt.Errorf("recording the pending create of %s: %w", s.Name, err)
	}
	l.awaitCached(ctx, lease)
	return nil
}

// awaitCached waits briefly until the informer holds what was just written,
// so the answer to the create, and the caller's next read, show it.
func (l *Ledger) awaitCached(ctx context.Context, written *coordinationv1.Lease) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var cached coordinationv1.Lease
		if err := l.cache.Get(ctx, client.ObjectKeyFromObject(written), &cached); err == nil && cached.ResourceVersion == written.ResourceVersion {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// release drops the record of owner's store; another owner's is left.
func (l *Ledger) release(ctx context.Context, name, owner string) error {
	var held coordinationv1.Lease
	err := l.client.Get(ctx, client.ObjectKey{Namespace: l.namespace, Name: recordName(name)}, &held)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec, ok := decode(&held); ok && rec.Store.Spec.Owner != owner {
		return nil
	}
	err = l.client.Delete(ctx, &held, client.Preconditions{UID: &held.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// pending lists the creates recorded, as the informer has them.
func (l *Ledger) pending() []openapi.PendingIntent {
	var list coordinationv1.LeaseList
	if err := l.cache.List(context.Background(), &list, client.InNamespace(l.namespace)); err != nil {
		return nil
	}
	now := time.Now()
	var out []openapi.PendingIntent
	for i := range list.Items {
		rec, ok := decode(&list.Items[i])
		// A reservation without a commit yet is not shown: its create is
		// under its owner's lock, which serializes the owner's next create,
		// and its name is taken by the Lease itself.
		if !ok || rec.Commit == "" || rec.PullRequest == "" && now.Sub(rec.At) > commitsKept {
			continue
		}
		out = append(out, openapi.PendingIntent{Store: rec.Store, Commit: rec.Commit, PullRequest: rec.PullRequest, At: rec.At})
	}
	return out
}

// forget drops a record once the cluster shows its store, in the
// background: it is called from reads.
func (l *Ledger) forget(name string) {
	if _, busy := l.forgetting.LoadOrStore(name, true); busy {
		return
	}
	go func() {
		defer l.forgetting.Delete(name)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: l.namespace, Name: recordName(name)}}
		_ = client.IgnoreNotFound(l.client.Delete(ctx, lease))
	}()
}

func (l *Ledger) lease(name string, rec record) (*coordinationv1.Lease, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: l.namespace, Name: recordName(name),
			Labels:      map[string]string{ledgerLabel: "true", v1alpha1.OwnerLabel: v1alpha1.OwnerLabelValue(rec.Store.Spec.Owner)},
			Annotations: map[string]string{recordAnnotation: string(data)},
		},
		// The holder is the owner: whoever inspects the Lease sees who
		// holds the name.
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(rec.Store.Spec.Owner)},
	}, nil
}

func decode(lease *coordinationv1.Lease) (record, bool) {
	var rec record
	if err := json.Unmarshal([]byte(lease.Annotations[recordAnnotation]), &rec); err != nil || rec.Store == nil {
		return record{}, false
	}
	return rec, true
}

func abandoned(rec record, now time.Time) bool {
	return rec.Commit == "" && now.Sub(rec.At) > abandonedAfter
}
