package gitsync

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	Remote Remote
	// Dir is the working copy the Reader owns.
	Dir string
	// Interval between syncs when no webhook arrives.
	Interval time.Duration
	// MaxPrune is the most stores syncs may delete within PruneWindow; a
	// sync that would go over deletes none and reports it.
	MaxPrune int
	// PruneWindow is the period MaxPrune counts deletions over (default an
	// hour), so a series of commits each deleting a few cannot empty the
	// fleet faster than one commit may.
	PruneWindow time.Duration
	// WebhookSecret authenticates POST /hooks/git (HMAC-SHA256 of the body).
	WebhookSecret []byte
	// Namespace is the platform namespace for the status ConfigMap and
	// SyncRequestConfigMap.
	Namespace string
	Client    client.Client
	// Watcher watches SyncRequestConfigMap while this reader leads, so a
	// webhook another replica accepted triggers a sync here; nil: only
	// webhooks this replica receives do.
	Watcher    client.WithWatch
	Log        logr.Logger
	Registerer prometheus.Registerer
}

// Reader syncs the stores repo into the cluster when Flux is absent: on an
// interval and on a webhook it fetches, server-side applies every valid
// Store manifest under the path, and prunes the Stores it applied before that
// are gone from Git — refusing when the tree is empty or unreadable, or when
// more than MaxPrune would go.
type Reader struct {
	opts      ReaderOptions
	source    string
	clone     *Clone
	validator *Validator
	trigger   chan struct{}
	// leading is true while Start runs: this replica syncs, so its webhook
	// need not be passed on.
	leading atomic.Bool
	mu      sync.Mutex
	status  SyncStatus
	metrics readerMetrics
	// introduced caches the commit that introduced a blob, per file.
	introduced map[string][2]plumbing.Hash
	// resumed is done once the last leader's prune record is taken over.
	resumed sync.Once
	// stamped records which commit each applied store was stamped with,
	// for the Reporter (Commits).
	stamped *stampedCommits
	// applied records what each store was last applied as, so a sync
	// sends only what changed (syncs run one at a time).
	applied map[string]appliedStore
}

type readerMetrics struct {
	syncs         *prometheus.CounterVec
	lastSuccess   prometheus.Gauge
	stores        prometheus.Gauge
	invalid       prometheus.Gauge
	pruneRefusals prometheus.Counter
	webhooks      *prometheus.CounterVec
}

// NewReader prepares a Reader; Start runs it.
func NewReader(opts ReaderOptions) (*Reader, error) {
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.MaxPrune < 0 {
		return nil, fmt.Errorf("--git-max-prune must not be negative")
	}
	if opts.PruneWindow < 0 {
		return nil, fmt.Errorf("--git-prune-window must not be negative")
	}
	if opts.PruneWindow == 0 {
		opts.PruneWindow = time.Hour
	}
	clone, err := OpenClone(opts.Remote, opts.Dir)
	if err != nil {
		return nil, err
	}
	v, err := NewValidator()
	if err != nil {
		return nil, err
	}
	r := &Reader{opts: opts, clone: clone, source: SourceDigest(opts.Remote), validator: v, trigger: make(chan struct{}, 1),
		introduced: map[string][2]plumbing.Hash{}, stamped: newStampedCommits(maxStampedCommits),
		applied: map[string]appliedStore{},
		status:  SyncStatus{Repository: redact(opts.Remote.URL), Branch: opts.Remote.Branch, Path: cleanDir(opts.Remote.Path)}}
	r.metrics = readerMetrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "storefleet_gitsync_syncs_total",
			Help: "Git to cluster syncs, by result (success, error)."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "storefleet_gitsync_last_success_timestamp_seconds",
			Help: "When the stores repo was last synced without error."}),
		stores: prometheus.NewGauge(prometheus.GaugeOpts{Name: "storefleet_gitsync_stores",
			Help: "Valid Store manifests at the last synced commit."}),
		invalid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "storefleet_gitsync_invalid_manifests",
			Help: "Manifests skipped at the last sync because they are invalid."}),
		pruneRefusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "storefleet_gitsync_prune_refusals_total",
			Help: "Syncs that refused to delete stores (empty tree or more than the prune limit)."}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "storefleet_gitsync_webhooks_total",
			Help: "Webhook deliveries, by result (accepted, unauthorized, invalid, unrecorded: not passed on to the leader)."}, []string{"result"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(r.metrics.syncs, r.metrics.lastSuccess, r.metrics.stores, r.metrics.invalid, r.metrics.pruneRefusals, r.metrics.webhooks)
	}
	return r, nil
}

// NeedLeaderElection: one replica syncs.
func (r *Reader) NeedLeaderElection() bool { return true }

// Start syncs now, then on every interval and trigger, until ctx ends.
func (r *Reader) Start(ctx context.Context) error {
	r.opts.Log.Info("Syncing the stores repo", "repository", redact(r.opts.Remote.URL), "branch", r.opts.Remote.Branch, "path", r.opts.Remote.Path, "interval", r.opts.Interval)
	r.leading.Store(true)
	defer r.leading.Store(false)
	if r.opts.Watcher != nil && r.opts.Namespace != "" {
		go r.followRequests(ctx)
	}
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		r.Sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.trigger:
		}
	}
}

// resumePruneRecord takes over the recent prunes the last leader recorded
// for this stores repo location, so a restart does not reset the limit.
func (r *Reader) resumePruneRecord(ctx context.Context) {
	if r.opts.Client == nil || r.opts.Namespace == "" {
		return
	}
	prev, err := ReadStatus(ctx, r.opts.Client, r.opts.Namespace)
	if err != nil {
		r.opts.Log.Error(err, "Cannot read the last sync status; the prune limit counts from now")
		return
	}
	st := r.Status()
	if prev == nil || prev.Repository != st.Repository || prev.Branch != st.Branch || prev.Path != st.Path {
		return
	}
	r.mu.Lock()
	r.status.RecentPrunes = prev.RecentPrunes
	r.mu.Unlock()
}

// Trigger asks for a sync as soon as possible; triggers coalesce.
func (r *Reader) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Stamped implements Commits: whether this reader applied store from commit.
func (r *Reader) Stamped(store, commit string) (stamped, known bool) {
	return r.stamped.Stamped(store, commit)
}

// Status returns the last sync's status.
func (r *Reader) Status() SyncStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}
