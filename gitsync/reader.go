package gitsync

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// +kubebuilder:rbac:groups=storefleet.dev,resources=stores,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;update;patch

const (
	// FieldManager owns the fields the Reader applies.
	FieldManager = "storefleet-gitsync"
	// SourceLabel marks the Stores a Reader applied with a digest of its
	// repository, branch and path; a Reader prunes only Stores with its own
	// value, never those of kubectl, the API or another stores repo.
	SourceLabel = "storefleet.dev/gitsync-source"
	// StatusConfigMap holds the Reader's last status in the platform
	// namespace, for the Intent API's GET /api/v1/gitsync.
	StatusConfigMap = "storefleet-gitsync"
	// StatusKey is the ConfigMap key holding SyncStatus as JSON.
	StatusKey = "status.json"
)

// SyncStatus is what the last sync did, for people and the API.
type SyncStatus struct {
	Repository string `json:"repository"`
	Branch     string `json:"branch"`
	Path       string `json:"path"`
	// Commit is the last commit synced without error.
	Commit string `json:"commit,omitempty"`
	// SyncedAt is when Commit was synced.
	SyncedAt *metav1.Time `json:"syncedAt,omitempty"`
	// AttemptedAt is when the last sync ran, successful or not.
	AttemptedAt *metav1.Time `json:"attemptedAt,omitempty"`
	// AttemptedCommit is the head the last sync saw.
	AttemptedCommit string `json:"attemptedCommit,omitempty"`
	// Stores is the number of valid manifests at AttemptedCommit.
	Stores int `json:"stores"`
	// Applied, Pruned list what the last sync changed.
	Applied []string `json:"applied,omitempty"`
	Pruned  []string `json:"pruned,omitempty"`
	// Invalid lists manifests that were skipped, with why.
	Invalid []Problem `json:"invalid,omitempty"`
	// Error is why the last sync did not complete (fetch failed, prune
	// refused, apply failed); empty when it did.
	Error string `json:"error,omitempty"`
}

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	Remote Remote
	// Dir is the working copy the Reader owns.
	Dir string
	// Interval between syncs when no webhook arrives.
	Interval time.Duration
	// MaxPrune is the most stores one sync may delete; a sync that would
	// delete more deletes none and reports it.
	MaxPrune int
	// WebhookSecret authenticates POST /hooks/git (HMAC-SHA256 of the body).
	WebhookSecret []byte
	// Namespace is the platform namespace for the status ConfigMap.
	Namespace  string
	Client     client.Client
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
	mu        sync.Mutex
	status    SyncStatus
	metrics   readerMetrics
	// introduced caches the commit that introduced a blob, per file.
	introduced map[string][2]plumbing.Hash
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
	clone, err := OpenClone(opts.Remote, opts.Dir)
	if err != nil {
		return nil, err
	}
	v, err := NewValidator()
	if err != nil {
		return nil, err
	}
	r := &Reader{opts: opts, clone: clone, source: SourceDigest(opts.Remote), validator: v, trigger: make(chan struct{}, 1),
		introduced: map[string][2]plumbing.Hash{},
		status:     SyncStatus{Repository: redact(opts.Remote.URL), Branch: opts.Remote.Branch, Path: cleanDir(opts.Remote.Path)}}
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
			Help: "Webhook deliveries, by result (accepted, unauthorized, invalid)."}, []string{"result"}),
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

// Trigger asks for a sync as soon as possible; triggers coalesce.
func (r *Reader) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Status returns the last sync's status.
func (r *Reader) Status() SyncStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Sync runs one sync and records its status.
func (r *Reader) Sync(ctx context.Context) SyncStatus {
	now := metav1.Now()
	st := r.Status()
	st.AttemptedAt, st.Applied, st.Pruned, st.Invalid, st.Error = &now, nil, nil, nil, ""
	if err := r.sync(ctx, &st); err != nil {
		st.Error = err.Error()
		r.metrics.syncs.WithLabelValues("error").Inc()
		r.opts.Log.Error(err, "Stores repo sync failed", "commit", st.AttemptedCommit)
	} else {
		st.Commit, st.SyncedAt = st.AttemptedCommit, &now
		r.metrics.syncs.WithLabelValues("success").Inc()
		r.metrics.lastSuccess.Set(float64(now.Unix()))
	}
	r.metrics.invalid.Set(float64(len(st.Invalid)))
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	if err := r.publish(ctx, st); err != nil {
		r.opts.Log.Error(err, "Cannot record the sync status", "configmap", r.opts.Namespace+"/"+StatusConfigMap)
	}
	return st
}

func (r *Reader) sync(ctx context.Context, st *SyncStatus) error {
	head, err := r.clone.Fetch(ctx, r.opts.Remote.Branch)
	if err != nil {
		return err
	}
	if head.IsZero() {
		return fmt.Errorf("branch %s does not exist in the stores repo yet; nothing synced, nothing deleted", r.opts.Remote.Branch)
	}
	st.AttemptedCommit = head.String()
	files, ok, err := r.clone.Files(head, r.opts.Remote.Path)
	if err != nil {
		return fmt.Errorf("read %s at %s: %w; nothing deleted", st.Path, short(head), err)
	}
	// Names the repo still declares, valid or not: a store whose manifest is
	// broken is not deleted because of the typo.
	declared := map[string]bool{}
	var manifests []*Manifest
	for _, name := range sortedKeys(files) {
		file := join(st.Path, name)
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			continue
		}
		declared[strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")] = true
		if len(files[name]) > maxManifestBytes {
			st.Invalid = append(st.Invalid, Problem{File: file, Message: fmt.Sprintf("file is larger than %d bytes", maxManifestBytes)})
			continue
		}
		m, problems := r.validator.File(file, files[name])
		if len(problems) > 0 {
			st.Invalid = append(st.Invalid, problems...)
			continue
		}
		manifests = append(manifests, m)
	}
	for _, p := range Duplicates(manifests) {
		st.Invalid = append(st.Invalid, p)
		manifests = slices.DeleteFunc(manifests, func(m *Manifest) bool { return m.File == p.File })
	}
	st.Stores = len(manifests)
	r.metrics.stores.Set(float64(len(manifests)))

	var errs []string
	for _, m := range manifests {
		changed, err := r.apply(ctx, head, m)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", m.File, err))
			continue
		}
		if changed {
			st.Applied = append(st.Applied, m.Store.Name)
		}
	}

	// A directory that is gone, or has no file at all, is a mistake until
	// shown otherwise; one that holds only .keep means "no stores".
	pruned, err := r.prune(ctx, declared, ok && len(files) > 0, st.Path, head)
	st.Pruned = pruned
	if err != nil {
		errs = append(errs, err.Error())
	}
	return joinErrors(errs)
}

// apply server-side applies one manifest as field manager storefleet-gitsync.
// It reports whether the object changed.
func (r *Reader) apply(ctx context.Context, head plumbing.Hash, m *Manifest) (bool, error) {
	obj := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(m.Object)}
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[SourceLabel] = r.source
	if owner := m.Store.Spec.Owner; owner != "" {
		labels[v1alpha1.OwnerLabel] = v1alpha1.OwnerLabelValue(owner)
	}
	obj.SetLabels(labels)
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1alpha1.ChannelAnnotation] = string(v1alpha1.ChannelGit)
	if commit, err := r.introducedBy(head, m.File); err == nil {
		ann[v1alpha1.CommitAnnotation] = commit.String()
	}
	obj.SetAnnotations(ann)

	var before v1alpha1.Store
	err := r.opts.Client.Get(ctx, client.ObjectKey{Name: m.Store.Name}, &before)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	if err == nil && !before.DeletionTimestamp.IsZero() {
		return false, fmt.Errorf("store %s is being deleted; it is recreated from Git once gone", m.Store.Name)
	}
	err = r.opts.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(FieldManager))
	if err != nil {
		if apierrors.IsConflict(err) {
			return false, fmt.Errorf("store %s exists and another manager owns the conflicting fields (created through the API or kubectl?): %s", m.Store.Name, apiMessage(err))
		}
		return false, fmt.Errorf("apply store %s: %s", m.Store.Name, apiMessage(err))
	}
	return before.ResourceVersion != obj.GetResourceVersion(), nil
}

// introducedBy is the commit that introduced file's current content,
// cached by blob so a sync does not walk history for unchanged files.
func (r *Reader) introducedBy(head plumbing.Hash, file string) (plumbing.Hash, error) {
	cm, err := r.clone.repo.CommitObject(head)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	blob, err := blobAt(cm, file)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if c, ok := r.introduced[file]; ok && c[0] == blob {
		return c[1], nil
	}
	commit, err := r.clone.IntroducedBy(cm, blob, file, 1000)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	r.introduced[file] = [2]plumbing.Hash{blob, commit}
	return commit, nil
}

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

// publish records st in the status ConfigMap.
func (r *Reader) publish(ctx context.Context, st SyncStatus) error {
	if r.opts.Client == nil || r.opts.Namespace == "" {
		return nil
	}
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: StatusConfigMap, Namespace: r.opts.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "storefleet"}},
		Data:       map[string]string{StatusKey: string(js)},
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cm)
	if err != nil {
		return err
	}
	return r.opts.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u}), client.FieldOwner(FieldManager), client.ForceOwnership)
}

// ReadStatus reads the last sync status from the cluster; nil when no
// Reader has run.
func ReadStatus(ctx context.Context, c client.Reader, namespace string) (*SyncStatus, error) {
	var cm corev1.ConfigMap
	err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: StatusConfigMap}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st SyncStatus
	if err := json.Unmarshal([]byte(cm.Data[StatusKey]), &st); err != nil {
		return nil, fmt.Errorf("configmap %s/%s: %w", namespace, StatusConfigMap, err)
	}
	return &st, nil
}

// WebhookPath is where forges deliver push events.
const WebhookPath = "/hooks/git"

// ServeHTTP accepts a forge's push webhook: the body's HMAC-SHA256 under the
// shared secret must match X-Gitea-Signature, X-Hub-Signature-256
// ("sha256=<hex>") or X-Storefleet-Signature. A valid one triggers a sync.
func (r *Reader) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20+1))
	if err != nil || len(body) > 1<<20 {
		r.metrics.webhooks.WithLabelValues("invalid").Inc()
		http.Error(w, "body unreadable or larger than 1 MiB", http.StatusBadRequest)
		return
	}
	if !r.signed(req.Header, body) {
		r.metrics.webhooks.WithLabelValues("unauthorized").Inc()
		http.Error(w, "missing or wrong signature", http.StatusUnauthorized)
		return
	}
	r.metrics.webhooks.WithLabelValues("accepted").Inc()
	r.Trigger()
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "sync triggered\n")
}

func (r *Reader) signed(h http.Header, body []byte) bool {
	if len(r.opts.WebhookSecret) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, r.opts.WebhookSecret)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, v := range []string{h.Get("X-Storefleet-Signature"), h.Get("X-Gitea-Signature"), strings.TrimPrefix(h.Get("X-Hub-Signature-256"), "sha256=")} {
		if got, err := hex.DecodeString(v); err == nil && len(got) > 0 && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// Sign returns the signature header value a webhook sender puts in
// X-Storefleet-Signature for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// SourceDigest is the SourceLabel value of a stores repo location.
func SourceDigest(r Remote) string {
	sum := sha256.Sum256([]byte(r.URL + "\n" + r.Branch + "\n" + cleanDir(r.Path)))
	return hex.EncodeToString(sum[:8])
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func short(h plumbing.Hash) string { return h.String()[:12] }

func displayPath(p string) string {
	if p == "" {
		return "the repository root"
	}
	return p + "/"
}

func joinErrors(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "; "))
}

func apiMessage(err error) string {
	if se, ok := err.(apierrors.APIStatus); ok {
		return se.Status().Message
	}
	return err.Error()
}
