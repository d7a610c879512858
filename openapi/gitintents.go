package openapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// The Git reader's status is a ConfigMap in the platform namespace: the
// platform chart grants the API get on that one ConfigMap there (a Role), so
// no marker here gives it ConfigMaps cluster-wide.

// PendingIntents are what PendingStores needs of Deferred Intents (the Git
// intent): what they delivered that the cluster may not show yet.
type PendingIntents interface {
	// Pending lists delivered intents the cluster may not show yet.
	Pending() []PendingIntent
	// Forget drops one once the cluster shows it.
	Forget(name string)
}

// PendingIntent is an intent delivered to the stores repo that the cluster
// has not caught up with yet.
type PendingIntent struct {
	// Store is the manifest as committed (for a removal, the store removed).
	Store *v1alpha1.Store
	// Removal is true for a deletion.
	Removal bool
	// Commit is the commit carrying the change (on the branch, or the PR's).
	Commit string
	// PullRequest is the pull request's URL, when one carries the change.
	PullRequest string
	// At is when the intent was delivered.
	At time.Time
}

// Reasons of the Ready condition of a store that exists only in Git so far.
const (
	ReasonCommitted       = "Committed"
	ReasonPullRequestOpen = "PullRequestOpen"
	// ReasonWithdrawn: deleted before it reached the cluster.
	ReasonWithdrawn = "Withdrawn"
)

// withdrawn marks the answer to the delete of a store only the stores repo
// held (a create not synced yet): there is nothing to delete in the
// cluster, and the caller learns what became of the commit or pull request.
func withdrawn(st *v1alpha1.Store) {
	msg := "removal committed to the stores repo before the store was synced: it will not be provisioned"
	src := st.Status.Source
	if src == nil {
		src = v1alpha1.SourceOf(st)
	}
	if src.PullRequest != "" {
		msg = "pull request " + src.PullRequest + " closed without merging: the store was never provisioned"
	}
	st.Status.Phase = v1alpha1.PhaseDeleting
	apimeta.SetStatusCondition(&st.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: ReasonWithdrawn, Message: msg,
		LastTransitionTime: metav1.Now(),
	})
}

// PendingStores answers reads from the cache, completed with the intents the
// stores repo holds but the cluster does not show yet: a committed store is
// Pending ("committed, waiting for sync" or "PR open"), a store whose
// removal is committed is Deleting.
type PendingStores struct {
	Cache   StoreReader
	Intents PendingIntents
}

func (p PendingStores) Get(ctx context.Context, name string) (*v1alpha1.Store, error) {
	st, err := p.Cache.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, in := range p.Intents.Pending() {
		if in.Store.Name == name {
			return p.overlay(st, in), nil
		}
	}
	return st, nil
}

func (p PendingStores) List(ctx context.Context, owner string) ([]v1alpha1.Store, error) {
	stores, err := p.Cache.List(ctx, owner)
	if err != nil {
		return nil, err
	}
	pending := map[string]PendingIntent{}
	for _, in := range p.Intents.Pending() {
		if owner == "" || in.Store.Spec.Owner == owner {
			pending[in.Store.Name] = in
		}
	}
	if len(pending) == 0 {
		return stores, nil
	}
	// A new slice: the cache's objects are shared and never written.
	out := make([]v1alpha1.Store, 0, len(stores)+len(pending))
	for i := range stores {
		in, ok := pending[stores[i].Name]
		if !ok {
			out = append(out, stores[i])
			continue
		}
		delete(pending, stores[i].Name)
		if view := p.overlay(&stores[i], in); view != nil {
			out = append(out, *view)
		}
	}
	for _, in := range pending {
		if view := p.overlay(nil, in); view != nil {
			out = append(out, *view)
		}
	}
	return out, nil
}

// overlay combines what the cluster shows (nil: nothing) with an intent.
func (p PendingStores) overlay(cached *v1alpha1.Store, in PendingIntent) *v1alpha1.Store {
	if !in.Removal {
		if cached != nil {
			// Synced: the cluster is the truth from now on.
			p.Intents.Forget(in.Store.Name)
			return cached
		}
		st := in.Store.DeepCopy()
		st.CreationTimestamp = metav1.NewTime(in.At)
		reason, msg := ReasonCommitted, "committed "+short(in.Commit)+" to the stores repo, waiting for sync"
		if in.PullRequest != "" {
			reason, msg = ReasonPullRequestOpen, "pull request open: "+in.PullRequest+" (merge it to provision the store)"
		}
		setPending(st, v1alpha1.PhasePending, reason, msg, in)
		return st
	}
	if cached == nil || !cached.DeletionTimestamp.IsZero() {
		if cached == nil {
			p.Intents.Forget(in.Store.Name)
		}
		return cached
	}
	st := cached.DeepCopy()
	msg := "removal committed " + short(in.Commit) + " to the stores repo, waiting for sync"
	if in.PullRequest != "" {
		msg = "pull request to remove the store open: " + in.PullRequest
	}
	setPending(st, v1alpha1.PhaseDeleting, ReasonCommitted, msg, in)
	return st
}

func setPending(st *v1alpha1.Store, phase v1alpha1.Phase, reason, msg string, in PendingIntent) {
	st.Status.Phase = phase
	apimeta.SetStatusCondition(&st.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
		LastTransitionTime: metav1.NewTime(in.At),
	})
	src := v1alpha1.SourceOf(st)
	src.Commit, src.PullRequest = in.Commit, in.PullRequest
	st.Status.Source = src
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// GitSync is what the operator's Git reader last did.
type GitSync struct {
	Repository      string            `json:"repository,omitempty" doc:"The stores repo (without credentials); admins only."`
	Branch          string            `json:"branch"`
	Path            string            `json:"path" doc:"Directory holding one <name>.yaml per store."`
	Commit          string            `json:"commit,omitempty" doc:"Last commit synced without error."`
	SyncedAt        *time.Time        `json:"syncedAt,omitempty" doc:"When commit was synced."`
	AttemptedAt     *time.Time        `json:"attemptedAt,omitempty" doc:"When the last sync ran, successful or not."`
	AttemptedCommit string            `json:"attemptedCommit,omitempty" doc:"The head the last sync saw."`
	Stores          int               `json:"stores" doc:"Valid manifests at attemptedCommit."`
	Applied         []string          `json:"applied,omitempty" doc:"Stores the last sync created or changed."`
	Pruned          []string          `json:"pruned,omitempty" doc:"Stores the last sync deleted because Git no longer declares them."`
	Invalid         []ManifestProblem `json:"invalid,omitempty" doc:"Manifests skipped as invalid; the others were synced."`
	Error           string            `json:"error,omitempty" doc:"Why the last sync did not complete (for example a refused prune); empty when it did."`
}

// ManifestProblem locates one problem in a stores repo manifest.
type ManifestProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// GitSyncOutput is the Git reader's last status.
type GitSyncOutput struct {
	Body GitSync
}

// GitSyncReader reads what the operator's Git reader last recorded
// (internal/gitintent reads its status ConfigMap; cmd/storefleet wires it).
type GitSyncReader interface {
	// GitSync is the last sync's status, or nil when no reader has synced
	// into this cluster.
	GitSync(ctx context.Context) (*GitSync, error)
}

// registerGitSync adds GET /api/v1/gitsync: what the operator's Git reader
// last synced, read from the status it records in the platform namespace.
func (s *Server) registerGitSync() {
	huma.Register(s.api, huma.Operation{
		OperationID: "get-gitsync", Method: http.MethodGet, Path: APIPrefix + "/gitsync",
		Summary:     "Stores repo sync status",
		Description: "The last sync of the stores repo into the cluster by the operator's Git reader: commit, time and the number of stores for everyone; the repository, the stores applied and pruned, invalid manifests and errors (for example a refused prune) for admins only, since they name other users' stores and the platform's repository. 404 when no reader runs (Flux syncs the repo, or Git is not used).",
		Tags:        []string{"platform"}, Security: storeSecurity, Middlewares: huma.Middlewares{s.authenticate},
		Errors: []int{http.StatusUnauthorized, http.StatusNotFound},
	}, func(ctx context.Context, _ *struct{}) (*GitSyncOutput, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var st *GitSync
		if s.deps.GitSync != nil {
			var err error
			if st, err = s.deps.GitSync.GitSync(ctx); err != nil {
				return nil, s.fail(ctx, err)
			}
		}
		if st == nil {
			return nil, s.fail(ctx, errorf(KindNotFound, "no Git reader has synced into this cluster (the operator runs one with --git-url and --git-sync)"))
		}
		if !identityFrom(ctx).Admin {
			// Least disclosure: when and what was synced, not whose stores
			// or where the repository lives.
			st = &GitSync{Branch: st.Branch, Path: st.Path, Commit: st.Commit, SyncedAt: st.SyncedAt,
				AttemptedAt: st.AttemptedAt, AttemptedCommit: st.AttemptedCommit, Stores: st.Stores}
		}
		return &GitSyncOutput{Body: *st}, nil
	})
}
