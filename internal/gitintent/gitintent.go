// Package gitintent fits gitsync to the Intent API's contracts: the stores
// repo Writer as openapi.Intents (deferred, with the pending intents reads
// show) and the Git reader's status in the cluster as openapi.GitSyncReader.
// openapi and gitsync know nothing of each other; cmd/storefleet wires these
// adapters, and the gitops suite wires the same ones.
package gitintent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/openapi"
)

// Intents delivers the API's creates and deletes as commits (or pull
// requests) to the stores repo, and records each create in the Ledger until
// the cluster shows it.
type Intents struct {
	Writer *gitsync.Writer
	Ledger *Ledger
}

var (
	_ openapi.Intents        = Intents{}
	_ openapi.PendingIntents = Intents{}
	_ openapi.GitSyncReader  = Status{}
)

// Create reserves the name in the ledger, commits the store and records
// what was delivered; a name the repo declares already, or another user's
// pending create holds, is openapi.ErrExists.
func (i Intents) Create(ctx context.Context, s *v1alpha1.Store) (*v1alpha1.Store, error) {
	fresh, err := i.Ledger.reserve(ctx, s)
	if err != nil {
		return nil, err
	}
	st, err := i.Writer.Create(ctx, s)
	if err != nil {
		if fresh {
			// Nothing of this create is in the repo: nothing is pending.
			_ = i.Ledger.release(context.WithoutCancel(ctx), s.Name, s.Spec.Owner)
		}
		if errors.Is(err, gitsync.ErrDeclared) {
			return nil, fmt.Errorf("%w: %w", openapi.ErrExists, err)
		}
		return nil, refused(err)
	}
	if err := i.Ledger.record(ctx, st); err != nil {
		return nil, err
	}
	// The ledger is the one record of it, which every replica reads.
	i.Writer.Forget(s.Name)
	return st, nil
}

// Delete commits the store's removal, or withdraws its pull request when
// that is all there is of it, and drops its pending create.
func (i Intents) Delete(ctx context.Context, s *v1alpha1.Store) error {
	if err := i.Writer.Delete(ctx, s); err != nil {
		return refused(err)
	}
	return i.Ledger.release(ctx, s.Name, s.Spec.Owner)
}

// refused turns what the stores repo or its forge refused into the API's
// vocabulary: 503 with the reason, which the caller cannot change but the
// platform team can (a link in the repository, a token without the right
// scope). Anything else stays as it is.
func refused(err error) error {
	var fe *gitsync.ForgeError
	switch {
	case errors.Is(err, gitsync.ErrSymlink):
		return &openapi.Error{Kind: openapi.KindUnavailable, Message: "the stores repo cannot take the change: " + err.Error()}
	case errors.As(err, &fe):
		return &openapi.Error{Kind: openapi.KindUnavailable, RetryAfter: fe.RetryAfter,
			Message: "the stores repo's forge refused the change: " + fe.Error()}
	}
	return err
}

// Deferred is true: the cluster shows a change once the repo is synced.
func (Intents) Deferred() bool { return true }

// Pending lists the creates the ledger holds and what this replica's Writer
// delivered since (removals, names the repo declared), the newer intent of a
// name winning.
func (i Intents) Pending() []openapi.PendingIntent {
	byName := map[string]openapi.PendingIntent{}
	for _, p := range i.Ledger.pending() {
		byName[p.Store.Name] = p
	}
	for _, p := range i.Writer.Pending() {
		if seen, ok := byName[p.Store.Name]; !ok || p.At.After(seen.At) {
			byName[p.Store.Name] = openapi.PendingIntent{Store: p.Store, Removal: p.Removal, Commit: p.Commit, PullRequest: p.PullRequest, At: p.At}
		}
	}
	out := make([]openapi.PendingIntent, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b openapi.PendingIntent) int { return a.At.Compare(b.At) })
	return out
}

// Forget drops a pending intent once the cluster shows it.
func (i Intents) Forget(name string) {
	i.Writer.Forget(name)
	i.Ledger.forget(name)
}

// Status reads the status the operator's Git reader records in the
// platform namespace.
type Status struct {
	Client    client.Reader
	Namespace string
}

// GitSync is the reader's last status, or nil when none has synced.
func (s Status) GitSync(ctx context.Context) (*openapi.GitSync, error) {
	st, err := gitsync.ReadStatus(ctx, s.Client, s.Namespace)
	if err != nil || st == nil {
		return nil, err
	}
	out := openapi.GitSync{Repository: st.Repository, Branch: st.Branch, Path: st.Path, Commit: st.Commit,
		AttemptedCommit: st.AttemptedCommit, Stores: st.Stores, Applied: st.Applied, Pruned: st.Pruned, Error: st.Error}
	if st.SyncedAt != nil {
		t := st.SyncedAt.UTC()
		out.SyncedAt = &t
	}
	if st.AttemptedAt != nil {
		t := st.AttemptedAt.UTC()
		out.AttemptedAt = &t
	}
	for _, p := range st.Invalid {
		out.Invalid = append(out.Invalid, openapi.ManifestProblem{File: p.File, Line: p.Line, Message: p.Message})
	}
	return &out, nil
}
