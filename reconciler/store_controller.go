// Package reconciler is the storefleet operator: it turns each Store into an
// isolated namespace with a chart release, reports every step in the Store's
// status, heals drift and cleans up on deletion.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// FieldManager owns every object the operator applies.
const FieldManager = "storefleet-operator"

// requeueWaiting is how soon a store waiting on something it does not
// watch is looked at again (a Helm release that is not deployed, a repair's
// aftermath in Flux mode).
const requeueWaiting = 2 * time.Second

// watchBackstop is how soon a store waiting on objects it watches (its
// pods, workloads, quota, namespace, volumes) is looked at again when no
// watch event came first. Their changes reconcile the store at once, so
// this only catches what no watched object reports (a StatefulSet's
// FailedCreate is an Event) and bounds a lost watch event; polling every
// few seconds kept a fleet's workers busy with stores that had not changed.
const watchBackstop = 15 * time.Second

// conflictRetry is how soon a reconcile that met a concurrent write runs
// again (the first step of the controller's failure backoff).
const conflictRetry = time.Second

// Options tune the operator.
type Options struct {
	// Platform is the environment's chart values and defaults.
	Platform Platform
	// MaxAttempts is how many failed attempts make a store Failed.
	MaxAttempts int
	// DriftInterval is the periodic re-check of a Ready store (a backstop:
	// managed objects are watched, so drift is normally seen at once).
	DriftInterval time.Duration
	// PodStartTimeout is how long a pod may wait to start before it counts
	// as a failure.
	PodStartTimeout time.Duration
	// Workers is the number of stores reconciled at once.
	Workers int
	// Delivery chooses Flux or the Helm SDK for new stores.
	Delivery DeliveryChoice
	// Flux configures Flux delivery; nil leaves it off.
	Flux *FluxOptions
	// CredentialsNamespace holds the operator's copy of each store's
	// credentials (the platform namespace); empty means
	// DefaultCredentialsNamespace.
	CredentialsNamespace string
	// Events receives every activity entry once it is saved in the status
	// (e.g. to Redis Streams); nil publishes nothing beyond the status.
	Events EventPublisher
}

// EventPublisher carries store events beyond the status ring. Publish must
// not block: a slow or absent consumer never holds up a reconcile.
type EventPublisher interface {
	Publish(events ...v1alpha1.StoreEvent)
}

// FluxOptions configure Flux delivery.
type FluxOptions struct {
	// Namespace holds the stores' HelmReleases (the platform namespace).
	Namespace string
	// Source is where helm-controller gets the store chart.
	Source ChartSource
	// Unresponsive is how long helm-controller may leave a change unhandled
	// before the store says it may not be running (default 30 s).
	Unresponsive time.Duration
}

// DefaultCredentialsNamespace is the platform namespace the chart installs into.
const DefaultCredentialsNamespace = "storefleet-system"

// DefaultOptions are the operator's defaults.
func DefaultOptions() Options {
	return Options{MaxAttempts: 3, DriftInterval: 120 * time.Second, PodStartTimeout: 5 * time.Minute, Workers: 3, Delivery: DeliveryAuto}
}

// StoreReconciler reconciles Stores.
type StoreReconciler struct {
	client.Client
	// APIReader reads what the cache does not hold (events, other namespaces' objects).
	APIReader client.Reader
	// Deliveries chooses each store's delivery (Helm SDK or Flux).
	Deliveries *Deliveries
	Recorder   record.EventRecorder
	Options

	outages outages
	views   releaseViews
	// runtimes remember the runtime a store's pods were found on, by the
	// pods' versions; workloads what its workloads said, by theirs.
	runtimes  versionMemo[v1alpha1.Runtime]
	workloads versionMemo[[]workloadReading]
}

// outages remembers, per store, since when the API server has been failing
// its reconciles, to space the retries by the outage's length.
type outages struct {
	mu    sync.Mutex
	since map[string]time.Time
}

// retryAfter is how long to wait before trying a store again that the API
// server just failed: half of how long it has been failing, 1 s to 30 s.
func (o *outages) retryAfter(store string, now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since == nil {
		o.since = map[string]time.Time{}
	}
	first, ok := o.since[store]
	if !ok {
		o.since[store], first = now, now
	}
	return min(max(now.Sub(first)/2, time.Second), 30*time.Second)
}

// end forgets a store's outage: it was reconciled without one.
func (o *outages) end(store string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.since, store)
}

// stepConditions are the provisioning steps whose conditions make up Ready,
// with the activity event recorded when each becomes True.
var stepConditions = []struct{ condition, event string }{
	{v1alpha1.NamespaceReadyCondition, v1alpha1.EventNamespaceReady},
	{v1alpha1.HelmInstalledCondition, v1alpha1.EventHelmInstalled},
	{v1alpha1.DatabaseReadyCondition, v1alpha1.EventDatabaseReady},
	{v1alpha1.BackendReadyCondition, v1alpha1.EventBackendReady},
	{v1alpha1.StorefrontReadyCondition, v1alpha1.EventStorefrontReady},
}

// scope is what one reconcile of one store works with.
type scope struct {
	// store is mutated by the steps; its status is patched once at the end.
	store *v1alpha1.Store
	// before is the status as read, to record only real transitions.
	before v1alpha1.StoreStatus
	// namespace is store-<name>.
	namespace string
	// desired is the release the store should have.
	desired DesiredRelease
	// release is the release as last observed or changed.
	release *ReleaseState
	// pods are the store's pods as the API server has them, read once a
	// reconcile when the health step needs them (see livePods).
	pods []corev1.Pod
	// workloads are the store's Deployments and StatefulSets as read
	// this reconcile (see workloadReadings).
	workloads []workloadReading
	// parsed are release's objects, parsed from parsedFrom (its manifest).
	parsed     []*unstructured.Unstructured
	parsedFrom string
	// delivery holds the store's release (chosen by the release step).
	delivery Delivery
	// failing is a pod-level failure found by the health step.
	failing *v1alpha1.Diagnosis
	// waiting is why the store is not Ready when no step condition says
	// it: what a deletion waits for, an engine that is coming soon.
	waiting *cause
	// stalled is set when nothing will change without a new spec or a
	// retry request: a terminal error, the retry limit, a Failed store
	// that stays Failed.
	stalled bool
	// stall is the cause of a stall found in this reconcile; nil when the
	// store was Stalled already.
	stall *cause
	// retried is set when a new generation or retry request ends the stall
	// of the last round of attempts.
	retried bool
	// done stops the remaining steps without an error.
	done bool
	// gone is set once the finalizer is removed: there is no status to patch.
	gone bool
	// handled is set when the generation was fully handled.
	handled bool
	// unchecked is set when the API server could not answer: the store
	// was not looked at, so its conditions stay as they were.
	unchecked bool
}

// cause is a condition's reason and message, as a step found them. Steps
// record causes in the scope; summarize turns them into Ready and Stalled.
type cause struct{ reason, message string }

// wait records what the store waits for (or why it is not provisioned),
// which summarize reports as Ready=False.
func (sc *scope) wait(reason, format string, args ...any) {
	sc.waiting = &cause{reason: reason, message: fmt.Sprintf(format, args...)}
}

// stallOn records a stall: summarize sets Stalled (and so the Failed phase).
func (sc *scope) stallOn(reason, format string, args ...any) {
	sc.stalled = true
	sc.stall = &cause{reason: reason, message: fmt.Sprintf(format, args...)}
}

// step is one ordered part of a reconcile. A step that must stop the ones
// after it returns a non-zero result, an error, or sets scope.done.
type step func(ctx context.Context, sc *scope) (ctrl.Result, error)

func (r *StoreReconciler) steps() []step {
	return []step{
		r.reconcileHost,
		r.reconcileEngine,
		r.reconcileNamespace,
		r.reconcileIsolation,
		r.reconcileCredentials,
		r.reconcileAdminInvite,
		r.reconcileRelease,
		// Drift before health: a deleted workload is repaired, not waited for.
		r.reconcileDrift,
		r.reconcileHealth,
	}
}

// +kubebuilder:rbac:groups=storefleet.dev,resources=stores,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=storefleet.dev,resources=stores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=storefleet.dev,resources=stores/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets;services;configmaps;resourcequotas;limitranges;persistentvolumeclaims,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=persistentvolumes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies;ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// Reconcile runs the steps for one Store and patches its status once.
func (r *StoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	// Read the Store from the API server, not the cache: the status patch is
	// computed against this copy, and a stale copy would make the patch leave
	// out fields (phase) that differ only from the stale version. (With the
	// cache, a repair made from a stale copy would still happen, but its
	// record — the patch — would be a conflict and lost.) This is the one
	// read of a Ready store's periodic check that goes to the API server
	// besides Helm's release history.
	//
	// The cache is asked first. A request can come from an object that only
	// carries a store label (a Flux HelmRelease someone else made, a Secret
	// left by a store long gone): when the cache holds no such Store there is
	// nothing to do, and a live GET for each of their events would load the
	// API server for nothing. A Store the cache does not hold yet brings its
	// own request when its informer sees it, so nothing is missed.
	if err := r.Get(ctx, req.NamespacedName, &v1alpha1.Store{}); apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil
	}
	store := &v1alpha1.Store{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, store); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// The finalizer is patched on its own, at once, so that no child object
	// can exist without it.
	if store.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(store, v1alpha1.Finalizer) {
		orig := store.DeepCopy()
		controllerutil.AddFinalizer(store, v1alpha1.Finalizer)
		if err := r.Patch(ctx, store, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldManager)); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}

	sc := &scope{store: store, before: *store.Status.DeepCopy(), namespace: v1alpha1.NamespaceFor(store.Name)}
	original := store.DeepCopy()
	defer func() {
		if !sc.unchecked {
			r.outages.end(store.Name)
		}
		if sc.gone {
			r.views.forget(store.UID)
			r.runtimes.forget(store.UID)
			r.workloads.forget(store.UID)
			if r.Events != nil && !store.DeletionTimestamp.IsZero() {
				e := v1alpha1.EventOf(store, v1alpha1.ActivityEntry{Timestamp: metav1.Now(), Event: v1alpha1.EventDeleted,
					Message: fmt.Sprintf("store %q is gone with its namespace and volumes", store.Name), Seq: v1alpha1.LastSeq(store.Status.ActivityLog) + 1})
				e.Phase = v1alpha1.PhaseDeleting
				r.Events.Publish(e)
			}
			return
		}
		r.summarize(sc, retErr)
		if sc.handled {
			store.Status.ObservedGeneration = store.Generation
		}
		// One status patch per reconcile, conditions and phase together, so
		// no reader ever sees Ready and the phase disagree. The optimistic
		// lock turns a concurrent write into a conflict and a retry.
		if statusChanged(original.Status, store.Status) {
			patch := client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})
			if err := r.Status().Patch(ctx, store, patch, client.FieldOwner(FieldManager)); err != nil && !apierrors.IsNotFound(err) {
				retErr = errors.Join(retErr, fmt.Errorf("patch status: %w", err))
			} else if err == nil {
				// Published only once saved: a failed patch re-records them.
				r.publish(store, v1alpha1.LastSeq(sc.before.ActivityLog))
			}
		}
		if sc.stalled && retErr != nil && !apierrors.IsConflict(retErr) {
			// Terminal: retrying cannot help until the spec or retry annotation changes.
			retErr = nil
		}
	}()

	if !store.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, sc)
	}
	if store.Spec.Suspend {
		sc.done = true
		return ctrl.Result{}, nil
	}
	if r.retryLimitReached(sc) {
		// Failed: wait for a new spec or the retry annotation (both trigger a reconcile).
		return ctrl.Result{}, nil
	}
	if len(store.Status.ActivityLog) == 0 {
		storesCreated.Inc()
		r.record(sc, v1alpha1.EventProvisioningStart, fmt.Sprintf("provisioning %s store %q for %s (plan %s)", store.Spec.Engine, store.Name, store.Spec.Owner, store.Spec.Plan))
	}

	for _, s := range r.steps() {
		res, err := s(ctx, sc)
		if err != nil {
			return r.failedAttempt(ctx, sc, err)
		}
		if sc.done || !res.IsZero() {
			return res, nil
		}
	}
	if sc.failing != nil {
		return r.failedAttempt(ctx, sc, fmt.Errorf("%s: %s", sc.failing.Object, sc.failing.Message))
	}
	sc.handled = true
	// A store that recovered by itself starts its next failure count afresh.
	store.Status.Failures, store.Status.LastFailureTime = 0, nil
	return ctrl.Result{RequeueAfter: r.DriftInterval}, nil
}

// statusChanged reports whether a reconcile changed the status beyond the
// time of its drift check. An idle store's periodic check is then not
// written: a fleet of Ready stores costs the API server (and etcd) no write
// per store per interval, the way node heartbeats moved out of Node status.
func statusChanged(before, after v1alpha1.StoreStatus) bool {
	if before.Drift != nil && after.Drift != nil && !equality.Semantic.DeepEqual(before.Drift.LastChecked, after.Drift.LastChecked) {
		d := *after.Drift
		d.LastChecked = before.Drift.LastChecked
		after.Drift = &d
	}
	return !equality.Semantic.DeepEqual(before, after)
}

// retryLimitReached decides whether a Failed store stays Failed. A new
// generation or a new value of the retry annotation starts a fresh round of
// attempts.
func (r *StoreReconciler) retryLimitReached(sc *scope) bool {
	s := sc.store
	if retry := s.Annotations[v1alpha1.RetryAnnotation]; retry != "" && retry != s.Status.LastHandledRetry {
		s.Status.LastHandledRetry = retry
		if s.Status.Failures > 0 {
			r.record(sc, v1alpha1.EventRetry, fmt.Sprintf("retry requested (%s=%s) after %d failed attempts", v1alpha1.RetryAnnotation, retry, s.Status.Failures))
		}
		s.Status.Failures, s.Status.LastFailureTime = 0, nil
		sc.retried = true
		return false
	}
	// conditions.Set stamps each condition with the generation it was set for.
	if stalled := conditions.Get(s, v1alpha1.StalledCondition); stalled != nil && stalled.ObservedGeneration != s.Generation {
		s.Status.Failures, s.Status.LastFailureTime = 0, nil
		sc.retried = true
		return false
	}
	if conditions.IsStalled(s) && conditions.GetReason(s, v1alpha1.StalledCondition) != v1alpha1.ReasonCredentialsLost {
		sc.stalled = true
		return true
	}
	// Lost credentials are looked at again on every reconcile: restoring the
	// Secret (a watched object) resumes the store without a retry request.
	return false
}

// failedAttempt counts a failed attempt. Terminal errors stall at once;
// others are retried with the controller's backoff until MaxAttempts.
func (r *StoreReconciler) failedAttempt(ctx context.Context, sc *scope, err error) (ctrl.Result, error) {
	s := sc.store
	var term *terminalError
	if errors.As(err, &term) {
		sc.stallOn(v1alpha1.ReasonInvalidSpec, "%s", term.Error())
		return ctrl.Result{}, nil
	}
	if apierrors.IsConflict(err) {
		// Someone else changed an object meanwhile: not a failed attempt.
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	if transientAPIError(err) {
		sc.unchecked = true
		retry := r.outages.retryAfter(s.Name, time.Now())
		log.FromContext(ctx).Info("API server unavailable; retrying without counting an attempt", "store", s.Name, "retryIn", retry.String(), "error", err.Error())
		// Not returned as an error: the controller's backoff grows with
		// every failed reconcile, and watch events (the very deletion to
		// repair) bring a store back many times a second, so a 12 s hiccup
		// became a 2-minute wait before the repair. The retry grows with
		// the outage instead (half its length, 1 s to 30 s).
		return ctrl.Result{RequeueAfter: retry}, nil
	}
	// Watch events can bring a failing store back many times a second; only
	// one attempt per backoff period (1 s, 2 s, 4 s ...) counts.
	now := metav1.Now()
	if last := s.Status.LastFailureTime; last != nil {
		if wait := attemptSpacing(s.Status.Failures) - now.Sub(last.Time); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	s.Status.Failures++
	s.Status.LastFailureTime = &now
	log.FromContext(ctx).Info("Attempt failed", "store", s.Name, "attempt", s.Status.Failures, "error", err.Error())
	if int(s.Status.Failures) >= r.MaxAttempts {
		sc.stallOn(v1alpha1.ReasonRetryLimitReached, "%d attempts failed; last error: %s", s.Status.Failures, err.Error())
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

// attemptSpacing is the least time between two counted failed attempts.
func attemptSpacing(failures int32) time.Duration {
	if failures < 1 {
		return 0
	}
	if failures > 6 {
		return time.Minute
	}
	return time.Second << (failures - 1)
}

// terminalError is an error that no retry can fix; the spec must change.
type terminalError struct{ err error }

func (t *terminalError) Error() string { return t.err.Error() }
func (t *terminalError) Unwrap() error { return t.err }

func terminal(err error) error { return &terminalError{err: err} }

// reconcileHost stalls a store whose hosts the platform does not own: a
// spec.domain outside the allow-list (a Store applied with kubectl or from
// Git meets the same rule as the Intent API), or a host beyond DNS limits.
// It runs before anything is created, so such a host never reaches an Ingress.
func (r *StoreReconciler) reconcileHost(_ context.Context, sc *scope) (ctrl.Result, error) {
	if err := hostProblem(sc.store, r.Platform); err != nil {
		return ctrl.Result{}, terminal(err)
	}
	return ctrl.Result{}, nil
}

// hostProblem is why a store may not have its hosts, or nil.
func hostProblem(s *v1alpha1.Store, p Platform) error {
	if err := v1alpha1.CheckHost(s.Name, s.Spec.Domain, p.Allowed()); err != nil {
		return fmt.Errorf("spec.domain: %w; use one of them or leave it empty for %s", err, p.Domain)
	}
	if err := v1alpha1.CheckHostLength(s.Name, storeDomain(s, p)); err != nil {
		return fmt.Errorf("spec.domain: %w", err)
	}
	return nil
}

// reconcileEngine stops at a known engine that is not provisioned yet.
func (r *StoreReconciler) reconcileEngine(_ context.Context, sc *scope) (ctrl.Result, error) {
	if sc.store.Spec.Engine == v1alpha1.EngineWooCommerce {
		if sc.before.Phase != v1alpha1.PhaseComingSoon {
			r.record(sc, v1alpha1.EventComingSoon, "WooCommerce stores are accepted and will be provisioned when the WooCommerce engine ships; nothing was created")
		}
		sc.wait(v1alpha1.ReasonEngineComingSoon, "the woocommerce engine is coming soon; the store is recorded but not provisioned")
		sc.done, sc.handled = true, true
	}
	return ctrl.Result{}, nil
}
