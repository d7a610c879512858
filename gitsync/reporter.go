package gitsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

const (
	// ReportedAnnotation remembers the last outcome reported to the forge as
	// "<commit>/<phase>", so a restart does not report it again.
	ReportedAnnotation = "storefleet.dev/reported"
	// CommentedAnnotation is the commit whose pull request got the one
	// comment with the store's outcome.
	CommentedAnnotation = "storefleet.dev/commented"
)

// Reporter writes the outcome of stores that came from Git back onto the
// stores repo: a commit status (context storefleet/<name>) on the commit that
// introduced the manifest, and one comment on its pull request once the
// store is Ready or Failed.
type Reporter struct {
	Forge Forge
	// Commits is the Git reader's record of the commits it applied stores
	// from; only those are reported (required).
	Commits Commits
	Client  client.Client
	// Reader reads the Store uncached (the manager's API reader), so an
	// outcome annotated a moment ago is never reported or commented twice.
	Reader client.Reader
	// DashboardURL is the dashboard's base URL; a status links to the
	// store's page there.
	DashboardURL string
	Log          logr.Logger
}

// SetupWithManager watches Stores that carry a commit annotation.
func (r *Reporter) SetupWithManager(mgr ctrl.Manager) error {
	if r.Commits == nil {
		return errors.New("the outcome reporter needs the Git reader's record of commits")
	}
	fromGit := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetAnnotations()[v1alpha1.CommitAnnotation] != ""
	})
	return ctrl.NewControllerManagedBy(mgr).Named("gitsync-reporter").
		For(&v1alpha1.Store{}, builder.WithPredicates(fromGit)).
		Complete(r)
}

// Reconcile reports a store's current phase if it has not been reported.
func (r *Reporter) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s v1alpha1.Store
	reader := r.Reader
	if reader == nil {
		reader = r.Client
	}
	if err := reader.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	commit := s.Annotations[v1alpha1.CommitAnnotation]
	if commit == "" || !s.DeletionTimestamp.IsZero() || s.Status.Phase == "" {
		return ctrl.Result{}, nil
	}
	if report, retry := r.reportable(&s, commit); !report {
		return ctrl.Result{RequeueAfter: retry}, nil
	}
	st := statusFor(&s, r.targetURL(s.Name))
	key := commit + "/" + string(s.Status.Phase)
	patch := map[string]string{}
	if s.Annotations[ReportedAnnotation] != key {
		if err := r.Forge.SetStatus(ctx, commit, st); err != nil {
			r.Log.Error(err, "Cannot set the commit status", "store", s.Name, "commit", commit)
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		patch[ReportedAnnotation] = key
		r.Log.Info("Reported store outcome on its commit", "store", s.Name, "commit", commit, "state", st.State)
	}
	final := s.Status.Phase == v1alpha1.PhaseReady || s.Status.Phase == v1alpha1.PhaseFailed
	if final && s.Annotations[CommentedAnnotation] != commit {
		pr, err := r.Forge.PullRequestFor(ctx, commit)
		if err != nil {
			r.Log.Error(err, "Cannot find the pull request of a commit", "store", s.Name, "commit", commit)
			return ctrl.Result{RequeueAfter: 30 * time.Second}, r.annotate(ctx, &s, patch)
		}
		if pr != nil {
			if err := r.Forge.Comment(ctx, pr.Number, commentFor(&s, commit, r.targetURL(s.Name))); err != nil {
				r.Log.Error(err, "Cannot comment on the pull request", "store", s.Name, "pullRequest", pr.URL)
				return ctrl.Result{RequeueAfter: 30 * time.Second}, r.annotate(ctx, &s, patch)
			}
			patch[v1alpha1.PullRequestAnnotation] = pr.URL
		}
		patch[CommentedAnnotation] = commit
	}
	return ctrl.Result{}, r.annotate(ctx, &s, patch)
}

// reportable decides whether the store's commit annotation may steer a call
// to the forge: it must be a commit id, and the one the reader applied this
// store from. Until the reader has read the repository since its start, the
// answer is "not yet" (retry).
func (r *Reporter) reportable(s *v1alpha1.Store, commit string) (report bool, retry time.Duration) {
	if !ValidCommitID(commit) {
		r.Log.Info("Not reporting: the commit annotation is not a commit id", "store", s.Name, "annotation", v1alpha1.CommitAnnotation)
		return false, 0
	}
	stamped, known := r.Commits.Stamped(s.Name, commit)
	if !known {
		return false, 10 * time.Second
	}
	if !stamped {
		r.Log.Info("Not reporting: the Git reader did not apply this store from that commit", "store", s.Name, "commit", commit)
		return false, 0
	}
	return true, 0
}

func (r *Reporter) annotate(ctx context.Context, s *v1alpha1.Store, ann map[string]string) error {
	if len(ann) == 0 {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	return client.IgnoreNotFound(r.Client.Patch(ctx, s, client.RawPatch(types.MergePatchType, body)))
}

func (r *Reporter) targetURL(name string) string {
	if r.DashboardURL == "" {
		return ""
	}
	return strings.TrimSuffix(r.DashboardURL, "/") + "/stores/" + name
}

// statusFor maps a store's phase to a commit status.
func statusFor(s *v1alpha1.Store, target string) CommitStatus {
	st := CommitStatus{Context: "storefleet/" + s.Name, TargetURL: target}
	switch s.Status.Phase {
	case v1alpha1.PhaseReady:
		st.State, st.Description = StateSuccess, "Ready"
		if s.Status.URLs != nil && s.Status.URLs.Storefront != "" {
			st.Description = "Ready: " + s.Status.URLs.Storefront
			if st.TargetURL == "" {
				st.TargetURL = s.Status.URLs.Storefront
			}
		}
	case v1alpha1.PhaseFailed:
		st.State, st.Description = StateFailure, "Failed: "+failureMessage(s)
	case v1alpha1.PhaseComingSoon:
		st.State, st.Description = StateSuccess, "Accepted: this engine is coming soon and not provisioned yet"
	default:
		st.State, st.Description = StatePending, string(s.Status.Phase)+": "+readyMessage(s)
	}
	return st
}

func commentFor(s *v1alpha1.Store, commit, target string) string {
	var b strings.Builder
	if s.Status.Phase == v1alpha1.PhaseReady {
		fmt.Fprintf(&b, "Store **%s** is Ready (from %s).\n\n", s.Name, commit[:min(12, len(commit))])
		if u := s.Status.URLs; u != nil {
			fmt.Fprintf(&b, "- Storefront: %s\n- Admin: %s\n", u.Storefront, u.Admin)
		}
	} else {
		fmt.Fprintf(&b, "Store **%s** failed (from %s): %s\n", s.Name, commit[:min(12, len(commit))], failureMessage(s))
		if d := s.Status.Diagnosis; d != nil {
			fmt.Fprintf(&b, "\nDiagnosis: %s — %s", d.Reason, d.Message)
			if d.Object != "" {
				fmt.Fprintf(&b, " (%s)", d.Object)
			}
			b.WriteString("\n")
		}
	}
	if target != "" {
		fmt.Fprintf(&b, "\nDetails: %s\n", target)
	}
	return b.String()
}

func failureMessage(s *v1alpha1.Store) string {
	if d := s.Status.Diagnosis; d != nil && d.Message != "" {
		return d.Message
	}
	return readyMessage(s)
}

func readyMessage(s *v1alpha1.Store) string {
	if c := apimeta.FindStatusCondition(s.Status.Conditions, v1alpha1.ReadyCondition); c != nil {
		return c.Message
	}
	return ""
}
