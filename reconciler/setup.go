package reconciler

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// managedTypes are the kinds of the objects a store consists of. They are
// watched through a cache that holds only objects labelled with a store, so
// deleting or editing one reconciles its store at once. Every kind a
// release's manifest holds must be here: the drift check reads release
// objects through the cache, and a kind missing from this list would make
// the cache start an informer of its own for it, cluster-wide, unfiltered
// and untrimmed (the migration Job's did: an eighth of the operator's heap
// at 1000 stores). The kinds of metadataOnlyKinds are watched as metadata
// only (see there).
func managedTypes() []client.Object {
	objs := []client.Object{
		&corev1.Namespace{}, &corev1.ResourceQuota{}, &corev1.LimitRange{}, &corev1.Secret{},
		&corev1.PersistentVolumeClaim{}, &networkingv1.NetworkPolicy{},
	}
	for _, gvk := range metadataOnlyKinds {
		objs = append(objs, metadataObject(gvk))
	}
	return objs
}

// metadataOnlyKinds are the managed kinds of which the operator reads
// nothing from the cache but metadata: pods (a change wakes the store; the
// health step reads a store's pods live, and only while a workload is not
// ready or the pods changed), the workloads (health and the plan read them
// live when their versions moved since they were last read, see
// workloadReadings; the drift check trusts them by generation), and the
// release's Services, Ingress and Job (the drift check trusts them by
// resourceVersion and reads them live when they changed). Watched as
// metadata, the API server sends no spec or status to decode — a rollout
// rewrites a Deployment's status a dozen times, each a whole Deployment
// decoded before — and the cache holds a PartialObjectMetadata (264 bytes)
// instead of a typed object (a Pod's struct alone is 1168 bytes; six a store).
var metadataOnlyKinds = []schema.GroupVersionKind{
	podGVK,
	deploymentGVK,
	statefulSetGVK,
	corev1.SchemeGroupVersion.WithKind("Service"),
	networkingv1.SchemeGroupVersion.WithKind("Ingress"),
	batchv1.SchemeGroupVersion.WithKind("Job"),
}

var (
	podGVK         = corev1.SchemeGroupVersion.WithKind("Pod")
	deploymentGVK  = appsv1.SchemeGroupVersion.WithKind("Deployment")
	statefulSetGVK = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
)

// metadataOnly reports whether the cache holds the kind's objects as
// metadata only.
func metadataOnly(gvk schema.GroupVersionKind) bool {
	for _, k := range metadataOnlyKinds {
		if k.GroupKind() == gvk.GroupKind() {
			return true
		}
	}
	return false
}

// metadataObject is an empty metadata-only object of the kind, for reads
// from (and watches of) a metadata informer.
func metadataObject(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// ManagedKinds are the kinds of managedTypes: what the operator caches of
// each store, besides the Store itself, its HelmRelease and the volumes.
func ManagedKinds() []schema.GroupVersionKind {
	var kinds []schema.GroupVersionKind
	for _, o := range managedTypes() {
		gvk, err := apiutil.GVKForObject(o, clientgoscheme.Scheme)
		if err != nil {
			panic(err) // managedTypes are built-in kinds
		}
		kinds = append(kinds, gvk)
	}
	return kinds
}

// CacheOptions restricts the manager's cache for the managed types to
// objects carrying the store label: the operator never holds every Secret or
// Pod of the cluster in memory.
func CacheOptions() cache.Options {
	sel := storeLabelSelector()
	// Managed fields are a third to half of a small object and nothing here
	// reads them: every cached object drops them (memory per store).
	strip := cache.TransformStripManagedFields()
	byObject := map[client.Object]cache.ByObject{&v1alpha1.Store{}: {Transform: sharingStrings(storeWithoutHistory)}}
	// One entry per type: the map is keyed by object pointer, and of two
	// entries for one kind the cache keeps either (pods kept their specs).
	for _, o := range managedTypes() {
		transform := strip
		gvk, err := apiutil.GVKForObject(o, clientgoscheme.Scheme)
		if err != nil {
			panic(err) // managedTypes are built-in kinds
		}
		by := cache.ByObject{Label: sel}
		switch {
		case generationTracksSpec(gvk):
			// The drift check compares a workload's labels and
			// annotations from the cache (stillMatches).
			transform = workloadMetadata
			by.UnsafeDisableDeepCopy = ptr.To(true)
		case metadataOnly(gvk):
			transform = metadataTrimmed
			// Nothing writes to what it reads of these (labels, versions):
			// reads share the cached object instead of copying it (the
			// drift check reads a store's Services and Job at every check).
			by.UnsafeDisableDeepCopy = ptr.To(true)
		case gvk.Kind == "ResourceQuota":
			transform = quotaWithoutUsage
		}
		if t, ok := specTrimmingTransforms[gvk.GroupKind()]; ok {
			transform = t
		}
		by.Transform = sharingStrings(transform)
		byObject[o] = by
	}
	// Volumes carry no store label (a provisioner makes them); a deleting
	// store waits for those of its claims, from the cache.
	byObject[&corev1.PersistentVolume{}] = cache.ByObject{Transform: sharingStrings(volumeClaimOnly)}
	return cache.Options{ByObject: byObject}
}

// storeWithoutHistory keeps a Store without its activity ring and
// inventory (with its managed fields, most of a Store's size): nothing reads
// them from the cache. A reconcile reads its Store from the API server; the
// cache serves the watch's predicates, the phase metric and the Git
// reporter (conditions, phase, URLs).
func storeWithoutHistory(o any) (any, error) {
	if s, ok := o.(*v1alpha1.Store); ok {
		s.ManagedFields = nil
		s.Status.ActivityLog = nil
		s.Status.Inventory = nil
	}
	return o, nil
}

// metadataTrimmed keeps of an object watched as metadata what is read of
// it: its name, UID, versions and the store label, which the watch maps it
// to its store by (one map a store, shared). A pod's other labels (the
// chart's, the template hash), its annotations, owner and generated name
// made its metadata three times the size.
func metadataTrimmed(o any) (any, error) {
	if m, ok := o.(*metav1.PartialObjectMetadata); ok {
		m.ManagedFields = nil
		keepLabels(m, v1alpha1.StoreLabel)
		m.Annotations = nil
		m.OwnerReferences = nil
		m.GenerateName = ""
	}
	return o, nil
}

// componentLabel names the part of a store a pod belongs to (the chart's
// label): health finds a workload's pods by it.
const componentLabel = "app.kubernetes.io/component"

// keepLabels reduces an object's labels to the keys given, in a map of its
// own: the cache then shares equal sets (a store's release objects whose
// metadata nothing reads all keep one, holding the store label).
func keepLabels(o metav1.Object, keys ...string) {
	var kept map[string]string
	for _, k := range keys {
		if v, ok := o.GetLabels()[k]; ok {
			if kept == nil {
				kept = make(map[string]string, len(keys))
			}
			kept[k] = v
		}
	}
	o.SetLabels(kept)
}

// quotaWithoutUsage keeps a quota without its usage, which the quota
// controller rewrites with every pod and nothing reads: the isolation step
// applies the spec and waits for the observed hard limits.
func quotaWithoutUsage(o any) (any, error) {
	if q, ok := o.(*corev1.ResourceQuota); ok {
		q.ManagedFields = nil
		q.Status.Used = nil
	}
	return o, nil
}

// workloadMetadata keeps of a Deployment's or StatefulSet's metadata what
// the drift check reads: name, UID, versions, generation, labels and
// annotations (a label edit does not move the generation).
func workloadMetadata(o any) (any, error) {
	if m, ok := o.(*metav1.PartialObjectMetadata); ok {
		m.ManagedFields = nil
		m.OwnerReferences = nil
		m.GenerateName = ""
	}
	return o, nil
}

// volumeClaimOnly keeps of a volume which claim it is bound to: all a
// deleting store reads of its volumes (and the index it finds them by).
func volumeClaimOnly(o any) (any, error) {
	if pv, ok := o.(*corev1.PersistentVolume); ok {
		pv.ManagedFields = nil
		var ref *corev1.ObjectReference
		if c := pv.Spec.ClaimRef; c != nil {
			ref = &corev1.ObjectReference{Namespace: c.Namespace, Name: c.Name}
		}
		pv.Spec = corev1.PersistentVolumeSpec{ClaimRef: ref}
		pv.Status = corev1.PersistentVolumeStatus{Phase: pv.Status.Phase}
	}
	return o, nil
}

// claimPhaseOnly keeps of a claim its metadata and phase, what health reads
// (a claim pending too long); the drift check reads a release's claim live.
func claimPhaseOnly(o any) (any, error) {
	if c, ok := o.(*corev1.PersistentVolumeClaim); ok {
		c.ManagedFields = nil
		keepLabels(c, v1alpha1.StoreLabel)
		c.Annotations = nil
		c.Spec = corev1.PersistentVolumeClaimSpec{}
		c.Status = corev1.PersistentVolumeClaimStatus{Phase: c.Status.Phase}
	}
	return o, nil
}

// releaseSpecDropped keeps a NetworkPolicy of a store's release as
// metadata only: nothing but the drift check reads them from the cache, and
// only their metadata (it reads them live when the object was written since
// it last matched). The operator's own policy (the default-deny policy,
// applied from the cache) keeps its spec, so the kind stays typed.
func releaseSpecDropped(o any) (any, error) {
	np, ok := o.(*networkingv1.NetworkPolicy)
	if !ok {
		return o, nil
	}
	np.ManagedFields = nil
	if _, owned := np.Annotations[helmReleaseAnnotation]; !owned {
		return o, nil
	}
	// The drift check trusts these by resourceVersion alone (see
	// stillMatches): of their metadata only the store label, which the
	// watch maps them by, is read.
	keepLabels(np, v1alpha1.StoreLabel)
	np.Annotations = nil
	np.Spec = networkingv1.NetworkPolicySpec{}
	return o, nil
}

// helmReleaseAnnotation marks an object a Helm release owns (Helm and
// helm-controller both set it).
const helmReleaseAnnotation = "meta.helm.sh/release-name"

// specTrimmingTransforms are the cache transforms of the kinds whose
// release objects the cache holds without their specs. One table for the
// cache and the drift check: a kind trimmed in the cache but compared from it
// would read as changed at every check.
var specTrimmingTransforms = map[schema.GroupKind]toolscache.TransformFunc{
	{Group: networkingv1.GroupName, Kind: "NetworkPolicy"}: releaseSpecDropped,
	{Kind: "PersistentVolumeClaim"}:                        claimPhaseOnly,
}

// specTrimmed reports whether the cache holds the release's objects of the
// kind without their specs (trimmed, or as metadata), so the drift check
// reads them live.
func specTrimmed(gvk schema.GroupVersionKind) bool {
	_, ok := specTrimmingTransforms[gvk.GroupKind()]
	return ok || metadataOnly(gvk)
}

// generationTracksSpec reports whether the API server bumps
// metadata.generation for every change of the kind's spec — so an object of
// it whose generation did not move was written in its status only. Of the
// kinds cached without specs, only the workloads' statuses are written all
// the time (rollouts); a Service's generation never moves.
func generationTracksSpec(gvk schema.GroupVersionKind) bool {
	return gvk.Group == appsv1.GroupName && (gvk.Kind == "Deployment" || gvk.Kind == "StatefulSet")
}

// volumeClaimNamespaceIndex indexes cached PersistentVolumes by the
// namespace of the claim they are bound to.
const volumeClaimNamespaceIndex = "spec.claimRef.namespace"

func volumeClaimNamespace(o client.Object) []string {
	if pv, ok := o.(*corev1.PersistentVolume); ok && pv.Spec.ClaimRef != nil {
		return []string{pv.Spec.ClaimRef.Namespace}
	}
	return nil
}

// storeForVolume maps a volume whose claim was in a store namespace to
// that store, so the volume's deletion ends the store's deletion at once.
func storeForVolume(_ context.Context, o client.Object) []reconcile.Request {
	for _, ns := range volumeClaimNamespace(o) {
		if name, ok := strings.CutPrefix(ns, v1alpha1.NamespacePrefix); ok && name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
		}
	}
	return nil
}

// onlyDeletions passes a watch's delete events only.
var onlyDeletions = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	UpdateFunc:  func(event.UpdateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
}

// storeLabelSelector selects objects that belong to a store.
func storeLabelSelector() labels.Selector {
	req, err := labels.NewRequirement(v1alpha1.StoreLabel, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// storeForObject maps a managed object to its Store by the store label.
func storeForObject(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[v1alpha1.StoreLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}

// SetupWithManager registers the reconciler and its watches.
func (r *StoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	_, err := r.setupWithManager(mgr)
	return err
}

func (r *StoreReconciler) setupWithManager(mgr ctrl.Manager) (controller.Controller, error) {
	if r.Workers == 0 {
		r.Workers = DefaultOptions().Workers
	}
	metrics.Registry.MustRegister(&phaseCollector{reader: mgr.GetCache()})
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Store{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{},
			predicate.LabelChangedPredicate{}, deletionPredicate{},
		))).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: r.Workers,
			// Failed attempts back off 1 s, 2 s, 4 s ... so MaxAttempts spans
			// seconds, not the default's milliseconds.
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 2*time.Minute),
		})
	for _, o := range managedTypes() {
		b = b.Watches(o, coalescedWakes(storeForObject), builder.WithPredicates(ignoreStatusNoise))
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.PersistentVolume{}, volumeClaimNamespaceIndex, volumeClaimNamespace); err != nil {
		return nil, err
	}
	b = b.Watches(&corev1.PersistentVolume{}, handler.EnqueueRequestsFromMapFunc(storeForVolume), builder.WithPredicates(onlyDeletions))
	return b.Build(r)
}

// watchHelmReleases starts watching the stores' HelmReleases once the Flux
// CRDs are served — at start or whenever Flux is installed later — so a
// HelmRelease's progress reconciles its store at once.
func watchHelmReleases(mgr ctrl.Manager, c controller.Controller, d *Deliveries) manager.RunnableFunc {
	return func(ctx context.Context) error {
		tick := time.NewTicker(fluxCheckInterval)
		defer tick.Stop()
		for {
			if d.FluxInstalled() {
				// A cache of its own: the manager's cannot be told about
				// a kind that did not exist when it was created.
				hrCache, err := cache.New(mgr.GetConfig(), cache.Options{
					Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
					ByObject: map[client.Object]cache.ByObject{&helmv2.HelmRelease{}: {
						Label: storeLabelSelector(), Transform: sharingStrings(cache.TransformStripManagedFields()),
					}},
				})
				if err != nil {
					return err
				}
				if err := mgr.Add(hrCache); err != nil {
					return err
				}
				if err := c.Watch(source.Kind(hrCache, client.Object(&helmv2.HelmRelease{}), coalescedWakes(storeForObject))); err != nil {
					return err
				}
				// Reconciles read HelmReleases from the watch's cache once
				// it holds them all, instead of one live GET each.
				if hrCache.WaitForCacheSync(ctx) {
					d.Flux.UseCache(hrCache)
				}
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	}
}

// wakeCoalescing is how long a change of a store's object waits before it
// reconciles the store. Creating a store sets off a burst of writes to its
// objects — helm-controller's status writes, each pod's and Deployment's
// progress — and in Flux mode, where a reconcile only looks, each one
// reconciled the store: ≈ 35 reconciles a store, each reading the Store and
// patching its status, on an API server already saturated by the installs.
// Changes within the window share one reconcile; the store's status is at
// most this much later.
const wakeCoalescing = 500 * time.Millisecond

// coalescedWakes maps an object's events to its store's reconcile:
// creations and updates after wakeCoalescing, so that a burst shares one
// reconcile (the queue keeps the earliest time of a waiting request), and
// deletions at once — a deleted Deployment is drift to heal, a deleted
// volume may end a store's deletion.
func coalescedWakes(toStore handler.MapFunc) handler.EventHandler {
	later := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			for _, req := range toStore(ctx, o) {
				q.AddAfter(req, wakeCoalescing)
			}
		}
	}
	now := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object) {
		for _, req := range toStore(ctx, o) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			later(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			later(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			now(ctx, q, e.Object)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			now(ctx, q, e.Object)
		},
	}
}

// ignoreStatusNoise drops updates of a managed object that change only
// status the reconciler never reads (withoutStatusNoise): every other
// update, and every create and delete, wakes the store.
var ignoreStatusNoise = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	old, cur := withoutStatusNoise(e.ObjectOld), withoutStatusNoise(e.ObjectNew)
	return old == nil || cur == nil || !equality.Semantic.DeepEqual(old, cur)
}}

// withoutStatusNoise is a copy of o without the status that controllers
// rewrite as a store's pods come and go and that the reconciler never reads,
// or nil for kinds that have none. A quota's usage changes with every pod
// (about ten updates a store while it starts); the operator reads only the
// quota's observed hard limits.
func withoutStatusNoise(o client.Object) client.Object {
	var c client.Object
	switch o := o.(type) {
	case *corev1.ResourceQuota:
		q := o.DeepCopy()
		q.Status.Used = nil
		c = q
	default:
		return nil
	}
	c.SetResourceVersion("")
	c.SetManagedFields(nil)
	return c
}

// deletionPredicate lets a deletion request through (it sets a timestamp
// without changing the generation).
type deletionPredicate struct{ predicate.Funcs }

func (deletionPredicate) Update(e event.UpdateEvent) bool {
	return e.ObjectNew.GetDeletionTimestamp() != nil && e.ObjectOld.GetDeletionTimestamp() == nil
}

// Setup creates the deliveries and the Store reconciler on a manager whose
// cache was built with CacheOptions.
func Setup(mgr ctrl.Manager, opts Options, chartFS fs.FS, log *slog.Logger) (*Deliveries, error) {
	helm, err := NewHelmSDK(mgr.GetConfig(), mgr.GetRESTMapper(), chartFS, log)
	if err != nil {
		return nil, err
	}
	memo, memoCache, err := newReleaseMemo(mgr.GetConfig(), cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(memoCache); err != nil {
		return nil, err
	}
	helm.memo = memo
	memo.stored = helm.storedManifest
	dc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return nil, err
	}
	d := &Deliveries{Choice: opts.Delivery, Helm: helm, Discovery: dc}
	if opts.Flux != nil {
		d.Flux = &FluxDelivery{
			Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: opts.Flux.Namespace,
			Source: opts.Flux.Source, DefaultChartVersion: helm.ChartVersion(), Helm: helm, Unresponsive: opts.Flux.Unresponsive,
		}
	}
	if opts.Delivery == DeliveryFlux && d.Flux == nil {
		return nil, fmt.Errorf("delivery flux needs a chart source for helm-controller")
	}
	recorder, stopRecorder, err := newEventRecorder(mgr.GetConfig(), mgr.GetScheme())
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(stopRecorder); err != nil {
		return nil, err
	}
	r := &StoreReconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Deliveries: d,
		Recorder:   recorder,
		Options:    opts,
	}
	c, err := r.setupWithManager(mgr)
	if err != nil {
		return nil, err
	}
	if d.Flux != nil {
		if err := mgr.Add(watchHelmReleases(mgr, c, d)); err != nil {
			return nil, err
		}
	}
	return d, nil
}
