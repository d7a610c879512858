package gitsync

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// prune deletes Stores this Reader applied that Git no longer declares, if
// there are at most MaxPrune of them.
func (r *Reader) prune(ctx context.Context, declared map[string]bool, treeOK bool, dir string, head plumbing.Hash) ([]string, error) {
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
		return nil, fmt.Errorf("%s is empty or missing at %s: refusing to delete the %d stores synced from it (%s); restore the directory (keep a .keep file in it to have no stores)", displayPath(dir), short(head), len(gone), strings.Join(names, ", "))
	}
	if len(gone) > r.opts.MaxPrune {
		r.metrics.pruneRefusals.Inc()
		return nil, fmt.Errorf("this sync would delete %d stores (%s), more than --git-max-prune=%d: nothing deleted; delete fewer at a time or raise the limit", len(gone), strings.Join(names, ", "), r.opts.MaxPrune)
	}
	var pruned []string
	for i := range gone {
		uid := gone[i].UID
		if err := r.opts.Client.Delete(ctx, &gone[i], client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return pruned, fmt.Errorf("delete store %s: %w", gone[i].Name, err)
		}
		pruned = append(pruned, gone[i].Name)
		r.opts.Log.Info("Pruned store removed from Git", "store", gone[i].Name)
	}
	return pruned, nil
}

func displayPath(p string) string {
	if p == "" {
		return "the repository root"
	}
	return p + "/"
}
