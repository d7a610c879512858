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

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/openapi"
)

// Intents delivers the API's creates and deletes as commits (or pull
// requests) to the stores repo.
type Intents struct {
	Writer *gitsync.Writer
}

var (
	_ openapi.Intents        = Intents{}
	_ openapi.PendingIntents = Intents{}
	_ openapi.GitSyncReader  = Status{}
)

// Create commits the store; a name the repo declares already is
// openapi.ErrExists.
func (i Intents) Create(ctx context.Context, s *v1alpha1.Store) (*v1alpha1.Store, error) {
	st, err := i.Writer.Create(ctx, s)
	if errors.Is(err, gitsync.ErrDeclared) {
		return nil, fmt.Errorf("%w: %w", openapi.ErrExists, err)
	}
	if err != nil {
		return nil, refused(err)
	}
	return st, nil
}

// Delete commits the store's removal.
func (i Intents) Delete(ctx context.Context, s *v1alpha1.Store) error {
	return refused(i.Writer.Delete(ctx, s))
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

// Pending lists what the Writer delivered that the cluster may not show yet.
func (i Intents) Pending() []openapi.PendingIntent {
	var out []openapi.PendingIntent
	for _, p := range i.Writer.Pending() {
		out = append(out, openapi.PendingIntent{Store: p.Store, Removal: p.Removal, Commit: p.Commit, PullRequest: p.PullRequest, At: p.At})
	}
	return out
}

// Forget drops a pending intent once the cluster shows it.
func (i Intents) Forget(name string) { i.Writer.Forget(name) }

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
