package gitsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// PullRequests is what withdrawing a create needs of a forge: the open pull
// request of a branch, and closing it.
type PullRequests interface {
	// OpenPullRequestFrom returns the open pull request whose head is
	// branch, or nil.
	OpenPullRequestFrom(ctx context.Context, branch string) (*PullRequest, error)
	// ClosePullRequest closes a pull request without merging it.
	ClosePullRequest(ctx context.Context, number int) error
}

// CreateBranch is the branch of the pull request that creates owner's store
// name: one per owner and store, so one user's create never continues (and
// never rewrites) another user's pull request for the same name. The
// readable part of the owner is lossy; the digest of the whole id keeps
// distinct owners apart.
func CreateBranch(owner, name string) string {
	sum := sha256.Sum256([]byte(owner))
	// Label-safe characters are ref-safe too, but for dots ("a..b" and
	// ".lock" are not refs).
	who := strings.ReplaceAll(v1alpha1.OwnerLabelValue(owner), ".", "-")
	if len(who) > 32 {
		who = who[:32]
	}
	return "storefleet/" + strings.Trim(who+"-"+hex.EncodeToString(sum[:4]), "-") + "/" + name
}

func (f *restForge) OpenPullRequestFrom(ctx context.Context, branch string) (*PullRequest, error) {
	var open []prJSON
	q := "/pulls?state=open&limit=50"
	if f.github {
		q = "/pulls?state=open&per_page=100&head=" + url.QueryEscape(f.owner+":"+branch)
	}
	if _, err := f.do(ctx, http.MethodGet, q, nil, &open); err != nil {
		return nil, err
	}
	for _, p := range open {
		if p.Head.Ref == branch {
			return &PullRequest{Number: p.Number, URL: p.HTMLURL}, nil
		}
	}
	return nil, nil
}

// ClosePullRequest sets the state to closed, as both forges take it.
func (f *restForge) ClosePullRequest(ctx context.Context, number int) error {
	_, err := f.do(ctx, http.MethodPatch, fmt.Sprintf("/pulls/%d", number), map[string]string{"state": "closed"}, nil)
	return err
}

// withdraw closes the open pull request of s's create, with a comment
// saying who withdrew it, and deletes its branch: a store that exists only
// in a pull request is withdrawn by closing that pull request, not by a
// second one removing what the branch does not hold. Without a pull request
// for it, nothing happens.
func (w *Writer) withdraw(ctx context.Context, s *v1alpha1.Store) error {
	if w.opts.Mode != ModePullRequest {
		return nil
	}
	branch := CreateBranch(s.Spec.Owner, s.Name)
	pr, err := w.opts.Forge.OpenPullRequestFrom(ctx, branch)
	if err != nil {
		return fmt.Errorf("finding the pull request of %s: %w", branch, err)
	}
	if pr != nil {
		user := s.Annotations[v1alpha1.RequestedByAnnotation]
		if user == "" {
			user = s.Spec.Owner
		}
		note := fmt.Sprintf("Withdrawn by %s through the storefleet Intent API: the store **%s** was deleted before this pull request was merged, so it is closed unmerged.", user, s.Name)
		if err := w.opts.Forge.Comment(ctx, pr.Number, note); err != nil {
			return fmt.Errorf("commenting on %s: %w", pr.URL, err)
		}
		if err := w.opts.Forge.ClosePullRequest(ctx, pr.Number); err != nil {
			return fmt.Errorf("closing %s: %w", pr.URL, err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if head, err := w.clone.Fetch(ctx, branch); err != nil || head.IsZero() {
		return err
	}
	return w.clone.deleteBranch(ctx, branch)
}

// deleteBranch removes a branch from the remote.
func (c *Clone) deleteBranch(ctx context.Context, branch string) error {
	spec := config.RefSpec(":" + plumbing.NewBranchReferenceName(branch).String())
	err := c.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: c.remote.Auth})
	if err == nil {
		return nil
	}
	return fmt.Errorf("git push deleting %s: %w", branch, err)
}
