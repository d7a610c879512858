package gitsync

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// prune deletes Stores this Reader applied that Git no longer declares, if
// with the deletions of the last PruneWindow they are at most MaxPrune. It
// records what it deleted in st.RecentPrunes.
func (r *Reader) prune(ctx context.Context, st *SyncStatus, declared map[string]bool, treeOK bool, head plumbing.Hash) ([]string, error) {
	now := time.Now()
	recent := recentPrunes(st.RecentPrunes, now.Add(-r.opts.PruneWindow))
	st.RecentPrunes = recent
	var list v1alpha1.StoreList
	if err := r.opts.Client.List(ctx, &list, client.MatchingLabels{SourceLabel: r.source}); err != nil {
		return nil, err
	}
	var gone []v1alpha1.Store
	for _, s := range list.Items {
		if !declared[s.Name] && s.DeletionTimestamp.IsZero() {
			gone = append(gone, s)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	names := make([]string, len(gone))
	for i := range gone {
		names[i] = gone[i].Name
	}
	if !treeOK {
		// An emptied directory is far more often a mistake (a bad merge, a
		// moved path) than the wish to delete every store.
		r.metrics.pruneRefusals.Inc()
		return nil, fmt.Errorf("%s holds no store manifest at %s: refusing to delete the %d stores synced from it (%s); restore the directory (keep a .keep file in it to have no stores)", displayPath(st.Path), short(head), len(gone), strings.Join(names, ", "))
	}
	if len(recent)+len(gone) > r.opts.MaxPrune {
		r.metrics.pruneRefusals.Inc()
		msg := fmt.Sprintf("this sync would delete %d stores (%s)", len(gone), strings.Join(names, ", "))
		if len(recent) > 0 {
			msg += fmt.Sprintf(" after %d deleted since %s (%s)", len(recent), recent[0].At.UTC().Format(time.RFC3339), strings.Join(prunedNames(recent), ", "))
		}
		return nil, fmt.Errorf("%s, more than --git-max-prune=%d per %s: nothing deleted; delete fewer at a time, wait, or raise the limit", msg, r.opts.MaxPrune, r.opts.PruneWindow)
	}
	var pruned []string
	for i := range gone {
		uid := gone[i].UID
		if err := r.opts.Client.Delete(ctx, &gone[i], client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return pruned, fmt.Errorf("delete store %s: %w", gone[i].Name, err)
		}
		pruned = append(pruned, gone[i].Name)
		st.RecentPrunes = append(st.RecentPrunes, PruneRecord{Store: gone[i].Name, At: metav1.NewTime(now)})
		r.opts.Log.Info("Pruned store removed from Git", "store", gone[i].Name)
	}
	return pruned, nil
}

// recentPrunes keeps the records after since.
func recentPrunes(records []PruneRecord, since time.Time) []PruneRecord {
	var out []PruneRecord
	for _, p := range records {
		if p.At.Time.After(since) {
			out = append(out, p)
		}
	}
	return out
}

func prunedNames(records []PruneRecord) []string {
	names := make([]string, len(records))
	for i, p := range records {
		names[i] = p.Store
	}
	return names
}

func displayPath(p string) string {
	if p == "" {
		return "the repository root"
	}
	return p + "/"
}
