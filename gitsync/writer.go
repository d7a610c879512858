package gitsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Mode is how the Writer delivers an intent to the stores repo.
type Mode string

const (
	// ModePush commits to the branch directly.
	ModePush Mode = "push"
	// ModePullRequest pushes a branch per owner and store and opens a pull
	// request.
	ModePullRequest Mode = "pull-request"
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	Remote Remote
	// Dir is the working copy the Writer owns.
	Dir  string
	Mode Mode
	// Forge opens pull requests; required in ModePullRequest.
	Forge Forge
	// Author signs the commits: the platform, not the user (who is named in
	// the trailers).
	Author object.Signature
	// MaxAttempts bounds the fetch-reapply-push loop of one intent.
	MaxAttempts int
	Log         logr.Logger
	Registerer  prometheus.Registerer
}

// Pending is an intent the Writer delivered to Git that the cluster has not
// caught up with yet.
type Pending struct {
	// Store is the manifest as committed (for a removal, the store removed).
	Store *v1alpha1.Store
	// Removal is true for a deletion.
	Removal bool
	// Commit is the commit carrying the change (on the branch, or the PR's).
	Commit string
	// PullRequest is the pull request's URL in ModePullRequest.
	PullRequest string
	At          time.Time
}

// Writer delivers Intent API creates and deletes as commits to the stores
// repo. One Writer serializes every change to its repository: concurrent
// requests queue on its lock, and a push the remote rejects because someone
// else pushed first is re-applied on the new head, never forced.
type Writer struct {
	opts    WriterOptions
	clone   *Clone
	mu      sync.Mutex
	pmu     sync.Mutex
	pending map[string]Pending
	metrics writerMetrics
}

type writerMetrics struct {
	commits, retries *prometheus.CounterVec
	failures         prometheus.Counter
}

// NewWriter opens (or creates) the working copy and checks the options.
func NewWriter(opts WriterOptions) (*Writer, error) {
	if opts.Mode == "" {
		opts.Mode = ModePush
	}
	if opts.Mode != ModePush && opts.Mode != ModePullRequest {
		return nil, fmt.Errorf("git mode %q is not supported (push or pull-request)", opts.Mode)
	}
	if opts.Mode == ModePullRequest && opts.Forge == nil {
		return nil, errors.New("git mode pull-request needs a forge (--forge-kind, --forge-url, --forge-repo, --forge-token-file)")
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	if opts.Author.Name == "" {
		opts.Author = object.Signature{Name: "storefleet", Email: "storefleet@storefleet.dev"}
	}
	clone, err := OpenClone(opts.Remote, opts.Dir)
	if err != nil {
		return nil, err
	}
	w := &Writer{opts: opts, clone: clone, pending: map[string]Pending{}}
	w.metrics = writerMetrics{
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "storefleet_gitsync_commits_total",
			Help: "Commits pushed to the stores repo by the Intent API, by operation (create, delete)."}, []string{"operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "storefleet_gitsync_push_retries_total",
			Help: "Pushes re-applied on a new head after the remote rejected them, by operation."}, []string{"operation"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "storefleet_gitsync_push_failures_total",
			Help: "Intents that could not be delivered to the stores repo."}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.metrics.commits, w.metrics.retries, w.metrics.failures)
	}
	return w, nil
}

// Mode reports how the Writer delivers intents.
func (w *Writer) Mode() Mode { return w.opts.Mode }

// Create commits the store's manifest. When the stores repo already declares
// the name, the declared store is recorded as pending and an error wrapping
// ErrDeclared returned, so the caller answers as for any existing store.
func (w *Writer) Create(ctx context.Context, s *v1alpha1.Store) (*v1alpha1.Store, error) {
	s = s.DeepCopy()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	// It reaches the cluster through Git, whoever asked for it.
	s.Annotations[v1alpha1.ChannelAnnotation] = string(v1alpha1.ChannelGit)
	content, err := ManifestOf(s)
	if err != nil {
		return nil, err
	}
	file, err := ManifestPath(w.opts.Remote.Path, s.Name)
	if err != nil {
		return nil, err
	}
	msg := commitMessage("add store "+s.Name, s)
	p, err := w.deliver(ctx, "create", CreateBranch(s.Spec.Owner, s.Name), change{file: file, content: content}, msg, s)
	if err != nil {
		return nil, err
	}
	p.Store = s
	w.remember(p)
	out := s.DeepCopy()
	out.Annotations[v1alpha1.CommitAnnotation] = p.Commit
	if p.PullRequest != "" {
		out.Annotations[v1alpha1.PullRequestAnnotation] = p.PullRequest
	}
	return out, nil
}

// Delete removes the store's manifest (or opens a pull request that does),
// after closing the pull request of its create if one is still open. A store
// the repo does not declare is not an error: nothing is committed.
func (w *Writer) Delete(ctx context.Context, s *v1alpha1.Store) error {
	file, err := ManifestPath(w.opts.Remote.Path, s.Name)
	if err != nil {
		return err
	}
	if err := w.withdraw(ctx, s); err != nil {
		return err
	}
	msg := commitMessage("remove store "+s.Name, s)
	p, err := w.deliver(ctx, "delete", "delete-store/"+s.Name, change{file: file}, msg, nil)
	if err != nil {
		return err
	}
	if p.Commit != "" {
		p.Store, p.Removal = s.DeepCopy(), true
		w.remember(p)
	}
	return nil
}

// ErrDeclared is the error (wrapped) of a Create whose store the branch
// already declares.
var ErrDeclared = errors.New("the stores repo already declares the store")

// deliver applies ch in the configured mode, retrying on a moved remote.
func (w *Writer) deliver(ctx context.Context, op, prBranch string, ch change, msg string, creating *v1alpha1.Store) (Pending, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < w.opts.MaxAttempts; attempt++ {
		if attempt > 0 {
			w.metrics.retries.WithLabelValues(op).Inc()
			_, _, wait := forgeRetry(lastErr)
			if err := sleepJitter(ctx, attempt, wait); err != nil {
				return Pending{}, err
			}
		}
		p, err := w.attempt(ctx, op, prBranch, ch, msg, creating)
		if err == nil || errors.Is(err, ErrDeclared) || !retryable(err) {
			if err != nil && !errors.Is(err, ErrDeclared) {
				w.metrics.failures.Inc()
			}
			return p, err
		}
		lastErr = err
		w.opts.Log.Info("Push rejected, re-applying on the new head", "file", ch.file, "attempt", attempt+1, "error", err.Error())
	}
	w.metrics.failures.Inc()
	return Pending{}, fmt.Errorf("stores repo changed too often to deliver %s after %d attempts: %w", ch.file, w.opts.MaxAttempts, lastErr)
}

func (w *Writer) attempt(ctx context.Context, op, prBranch string, ch change, msg string, creating *v1alpha1.Store) (Pending, error) {
	branch := w.opts.Remote.Branch
	head, err := w.clone.Fetch(ctx, branch)
	if err != nil {
		return Pending{}, err
	}
	if creating != nil && !head.IsZero() {
		if declared, err := w.declared(head, ch.file); err != nil {
			return Pending{}, err
		} else if declared != nil {
			w.remember(Pending{Store: declared, Commit: head.String(), At: time.Now()})
			return Pending{}, fmt.Errorf("%w: %s", ErrDeclared, ch.file)
		}
	}
	base, target := head, branch
	if w.opts.Mode == ModePullRequest {
		target = prBranch
		if h, err := w.clone.remoteHead(prBranch); err != nil {
			return Pending{}, err
		} else if !h.IsZero() {
			// Continue the branch (never rewrite it): a repeated request adds
			// nothing, an edited one adds a commit on top.
			base = h
		}
	}
	commit, err := w.clone.commitOnto(base, ch, msg, w.signature())
	if err != nil {
		return Pending{}, err
	}
	if commit.IsZero() {
		commit = base
		if w.opts.Mode == ModePush || base == head {
			// Nothing to change: the branch already says this.
			return Pending{Commit: hashString(head), At: time.Now()}, nil
		}
	} else {
		if err := w.clone.push(ctx, commit, target); err != nil {
			return Pending{}, err
		}
		w.metrics.commits.WithLabelValues(op).Inc()
	}
	p := Pending{Commit: commit.String(), At: time.Now()}
	if w.opts.Mode == ModePullRequest {
		title, _, _ := strings.Cut(msg, "\n")
		pr, err := w.opts.Forge.OpenPullRequest(ctx, PullRequestSpec{Head: target, Base: branch, Title: title, Body: prBody(msg)})
		if err != nil {
			return Pending{}, fmt.Errorf("open pull request for %s: %w", target, err)
		}
		p.PullRequest = pr.URL
	}
	return p, nil
}

// declared returns the store the branch declares in file, or nil.
func (w *Writer) declared(head plumbing.Hash, file string) (*v1alpha1.Store, error) {
	data, ok, err := w.clone.File(head, file)
	if err != nil || !ok {
		return nil, err
	}
	var st v1alpha1.Store
	if err := yaml.Unmarshal(data, &st); err != nil || st.Name == "" {
		// A broken manifest still claims the name.
		st.Name = strings.TrimSuffix(path.Base(file), ".yaml")
	}
	return &st, nil
}

func (w *Writer) signature() object.Signature {
	s := w.opts.Author
	s.When = time.Now()
	return s
}

func (w *Writer) remember(p Pending) {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	w.pending[p.Store.Name] = p
}

// Pending lists the intents delivered to Git, oldest first. Entries older
// than a day are dropped: by then the sync has either happened or failed
// visibly in the reader's status.
func (w *Writer) Pending() []Pending {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	var out []Pending
	for name, p := range w.pending {
		if time.Since(p.At) > 24*time.Hour {
			delete(w.pending, name)
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Forget drops a pending intent once the cluster shows it.
func (w *Writer) Forget(name string) {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	delete(w.pending, name)
}

func commitMessage(subject string, s *v1alpha1.Store) string {
	user := s.Annotations[v1alpha1.RequestedByAnnotation]
	if user == "" {
		user = s.Spec.Owner
	}
	return fmt.Sprintf("storefleet: %s\n\nRequested by %s through the storefleet Intent API.\n\nStorefleet-Requested-By: %s\nStorefleet-Request-Id: %s\n",
		subject, user, user, s.Annotations[v1alpha1.RequestIDAnnotation])
}

func prBody(msg string) string {
	_, rest, _ := strings.Cut(msg, "\n")
	return rest + "\nMerging this pull request provisions the change; storefleet reports the outcome here."
}

// retryable reports whether a failed attempt may succeed on a fresh head:
// rejections and transient transport errors are, authentication is not; a
// forge's answer only when it is transient (forgeRetry).
func retryable(err error) bool {
	if forge, retry, _ := forgeRetry(err); forge {
		return retry
	}
	return !errors.Is(err, ErrSymlink) &&
		!errors.Is(err, transport.ErrAuthenticationRequired) &&
		!errors.Is(err, transport.ErrAuthorizationFailed) &&
		!errors.Is(err, transport.ErrRepositoryNotFound) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// sleepJitter backs off 50ms·2^attempt (capped at 2 s) with full jitter, so
// writers racing for one branch spread out instead of colliding again; never
// less than atLeast (a forge's Retry-After).
func sleepJitter(ctx context.Context, attempt int, atLeast time.Duration) error {
	d := min(50*time.Millisecond<<attempt, 2*time.Second)
	t := time.NewTimer(max(rand.N(d)+d/4, atLeast))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func hashString(h plumbing.Hash) string {
	if h.IsZero() {
		return ""
	}
	return h.String()
}
