package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// workload is one chart workload that a health condition depends on.
type workload struct {
	kind      string // Deployment or StatefulSet
	name      string
	component string // app.kubernetes.io/component of its pods
}

// healthChecks maps each health condition to the workloads it summarises.
var healthChecks = []struct {
	condition string
	workloads []workload
}{
	{v1alpha1.DatabaseReadyCondition, []workload{{"StatefulSet", "postgres", "database"}}},
	{v1alpha1.BackendReadyCondition, []workload{{"Deployment", "medusa-backend", "backend"}, {"Deployment", "medusa-worker", "worker"}}},
	{v1alpha1.StorefrontReadyCondition, []workload{{"Deployment", "storefront", "storefront"}}},
}

// workloadStatus is what one workload says about itself.
type workloadStatus struct {
	ready     bool
	message   string
	diagnosis *v1alpha1.Diagnosis
	// failure marks a diagnosis as a failure rather than slow progress.
	failure bool
}

// reconcileHealth sets DatabaseReady, BackendReady and StorefrontReady from
// the workloads, passing their own messages up, and finds the pod-level cause
// of anything not ready.
func (r *StoreReconciler) reconcileHealth(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	runtime, err := r.storeRuntime(ctx, sc)
	if err != nil {
		return ctrl.Result{}, err
	}
	if runtime != "" {
		s.Status.Runtime = runtime
	}
	allReady := true
	var first *workloadStatus
	for _, hc := range healthChecks {
		ready := true
		var msgs []string
		var found *workloadStatus
		for _, w := range hc.workloads {
			st, err := r.workloadHealth(ctx, sc, w)
			if err != nil {
				return ctrl.Result{}, err
			}
			ready = ready && st.ready
			msgs = append(msgs, st.message)
			if st.diagnosis != nil && found == nil {
				found = &st
			}
		}
		switch {
		case ready:
			conditions.MarkTrue(s, hc.condition, v1alpha1.ReasonSucceeded, "%s", strings.Join(msgs, "; "))
		case found != nil && found.failure:
			conditions.MarkFalse(s, hc.condition, v1alpha1.ReasonWorkloadFailing, "%s: %s", found.diagnosis.Object, found.diagnosis.Message)
		case found != nil:
			conditions.MarkFalse(s, hc.condition, v1alpha1.ReasonWorkloadNotReady, "%s: %s", found.diagnosis.Object, found.diagnosis.Message)
		default:
			conditions.MarkFalse(s, hc.condition, v1alpha1.ReasonWorkloadNotReady, "%s", strings.Join(msgs, "; "))
		}
		allReady = allReady && ready
		if first == nil && found != nil {
			first = found
		}
	}
	s.Status.Diagnosis = nil
	if first != nil {
		s.Status.Diagnosis = first.diagnosis
		if first.failure {
			sc.failing = first.diagnosis
		}
	}
	if !allReady && sc.failing == nil {
		return ctrl.Result{RequeueAfter: watchBackstop}, nil
	}
	return ctrl.Result{}, nil
}

func (r *StoreReconciler) workloadHealth(ctx context.Context, sc *scope, w workload) (workloadStatus, error) {
	readings, err := r.workloadReadings(ctx, sc)
	if err != nil {
		return workloadStatus{}, err
	}
	wr, found := findReading(readings, w.kind, w.name)
	if !found {
		return workloadStatus{message: fmt.Sprintf("%s %s not found", w.kind, w.name)}, nil
	}
	desired, ready, failedCreate := wr.desired, wr.ready, wr.failedCreate
	if wr.podsMissing {
		// A StatefulSet's pod is missing: the controller's FailedCreate
		// event says why.
		msg, err := r.failedCreateEvent(ctx, sc.namespace, w.kind, w.name)
		if err != nil {
			return workloadStatus{}, err
		}
		failedCreate = msg
	}
	st := workloadStatus{
		ready:   wr.rolledOut && ready >= desired,
		message: fmt.Sprintf("%s %s: %d/%d ready", w.kind, w.name, ready, desired),
	}
	if st.ready {
		return st, nil
	}
	if failedCreate != "" {
		reason := "FailedCreate"
		if strings.Contains(failedCreate, "exceeded quota") {
			reason = "QuotaExceeded"
		}
		st.diagnosis = &v1alpha1.Diagnosis{Reason: reason, Message: failedCreate, Object: w.kind + " " + w.name}
		st.failure = true
		return st, nil
	}
	d, failure, err := r.podDiagnosis(ctx, sc, w)
	if err != nil {
		return workloadStatus{}, err
	}
	if d != nil && !failure && w.kind == "Deployment" && (w.component == "backend" || w.component == "worker") {
		// Medusa's pods wait in their init container for the release's
		// migration Job; a Job whose pod is refused (quota) never finishes.
		if jd, err := r.migrationFailure(ctx, sc.namespace); err != nil {
			return workloadStatus{}, err
		} else if jd != nil {
			d, failure = jd, true
		}
	}
	st.diagnosis, st.failure = d, failure
	return st, nil
}

// migrationFailure names an unfinished migration Job of the chart whose pod
// could not be created. Read live, and only while Medusa's pods wait: the
// operator keeps no cache of Jobs.
func (r *StoreReconciler) migrationFailure(ctx context.Context, namespace string) (*v1alpha1.Diagnosis, error) {
	var jobs batchv1.JobList
	if err := r.APIReader.List(ctx, &jobs, client.InNamespace(namespace), client.MatchingLabels{componentLabel: "migrate"}); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	for _, j := range jobs.Items {
		if j.Status.Succeeded > 0 || j.Status.Active > 0 && j.Status.Ready != nil && *j.Status.Ready > 0 {
			continue
		}
		msg, err := r.failedCreateEvent(ctx, namespace, "Job", j.Name)
		if err != nil || msg == "" {
			return nil, err
		}
		reason := "FailedCreate"
		if strings.Contains(msg, "exceeded quota") {
			reason = "QuotaExceeded"
		}
		return &v1alpha1.Diagnosis{Reason: reason, Message: "the migration Job cannot start its pod, and the new Medusa pods wait for it: " + msg, Object: "Job " + j.Name}, nil
	}
	return nil, nil
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// podDiagnosis looks at a workload's pods for the cause of unreadiness,
// read live (the cache holds pods as metadata only): a store whose
// workloads are all ready reads none.
// failure is true for causes that will not clear by themselves (a crash
// loop, an image that cannot be pulled) and for any cause that has lasted
// longer than PodStartTimeout; before that, a pod that waits for its volume
// or the scheduler is still starting.
func (r *StoreReconciler) podDiagnosis(ctx context.Context, sc *scope, w workload) (*v1alpha1.Diagnosis, bool, error) {
	pods, err := r.livePods(ctx, sc)
	if err != nil {
		return nil, false, err
	}
	now := time.Now()
	for i := range pods {
		if pods[i].Labels[componentLabel] != w.component {
			continue
		}
		if d, failure := PodDiagnosis(&pods[i], r.PodStartTimeout, now); d != nil {
			return d, failure, nil
		}
	}
	if w.kind == "StatefulSet" {
		var pvcs corev1.PersistentVolumeClaimList
		if err := r.List(ctx, &pvcs, client.InNamespace(sc.namespace)); err != nil {
			return nil, false, err
		}
		for _, pvc := range pvcs.Items {
			if pvc.Status.Phase == corev1.ClaimPending && pvc.CreationTimestamp.Add(r.PodStartTimeout).Before(time.Now()) {
				return &v1alpha1.Diagnosis{Reason: "VolumeUnbound", Message: fmt.Sprintf("PersistentVolumeClaim %s is not bound after %s", pvc.Name, r.PodStartTimeout), Object: "pvc " + pvc.Name}, true, nil
			}
		}
	}
	return nil, false, nil
}

// failedCreateEvent returns the latest FailedCreate event message of an
// object; a StatefulSet reports pod-creation failures only as events.
func (r *StoreReconciler) failedCreateEvent(ctx context.Context, namespace, kind, name string) (string, error) {
	var events corev1.EventList
	if err := r.APIReader.List(ctx, &events, client.InNamespace(namespace)); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	var latest *corev1.Event
	for i := range events.Items {
		e := &events.Items[i]
		if e.Reason != "FailedCreate" || e.InvolvedObject.Kind != kind || e.InvolvedObject.Name != name {
			continue
		}
		if latest == nil || e.LastTimestamp.After(latest.LastTimestamp.Time) {
			latest = e
		}
	}
	if latest == nil {
		return "", nil
	}
	return latest.Message, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// workloadReading is what health and the plan read of one of a store's
// workloads, as the API server had it.
type workloadReading struct {
	kind, name     string
	desired, ready int32
	rolledOut      bool
	podsMissing    bool   // a StatefulSet with fewer pods than replicas
	failedCreate   string // a Deployment's ReplicaFailure message
	databaseVolume string // the postgres StatefulSet's data volume size
}

func findReading(readings []workloadReading, kind, name string) (workloadReading, bool) {
	for _, wr := range readings {
		if wr.kind == kind && wr.name == name {
			return wr, true
		}
	}
	return workloadReading{}, false
}

// workloadReadings are the store's Deployments and StatefulSets as health
// and the plan read them: remembered while the workloads' versions in the
// cache (which holds their metadata only) stay where they were when read,
// otherwise read live — one LIST of each kind, once a reconcile. An idle
// store's check reads none.
func (r *StoreReconciler) workloadReadings(ctx context.Context, sc *scope) ([]workloadReading, error) {
	if sc.workloads != nil {
		return sc.workloads, nil
	}
	versions, err := r.cachedVersions(ctx, sc.namespace, deploymentGVK, statefulSetGVK)
	if err != nil {
		return nil, err
	}
	if readings, ok := r.workloads.get(sc.store.UID, versions); ok {
		sc.workloads = readings
		return readings, nil
	}
	var deployments appsv1.DeploymentList
	if err := r.APIReader.List(ctx, &deployments, client.InNamespace(sc.namespace)); err != nil {
		return nil, err
	}
	var sets appsv1.StatefulSetList
	if err := r.APIReader.List(ctx, &sets, client.InNamespace(sc.namespace)); err != nil {
		return nil, err
	}
	readings := make([]workloadReading, 0, len(deployments.Items)+len(sets.Items))
	for i := range deployments.Items {
		readings = append(readings, readDeployment(&deployments.Items[i]))
	}
	for i := range sets.Items {
		readings = append(readings, readStatefulSet(&sets.Items[i]))
	}
	r.workloads.put(sc.store.UID, versions, readings)
	sc.workloads = readings
	return readings, nil
}

func readDeployment(d *appsv1.Deployment) workloadReading {
	desired := replicasOf(d.Spec.Replicas)
	wr := workloadReading{
		kind: "Deployment", name: cachedStrings.shared(d.Name),
		desired: desired, ready: d.Status.AvailableReplicas,
		rolledOut: d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= desired &&
			d.Status.Replicas == d.Status.UpdatedReplicas && d.Status.AvailableReplicas >= desired,
	}
	// A pod the ReplicaSet cannot create (quota, pod security) is the
	// ReplicaSet's ReplicaFailure condition, which the deployment
	// controller copies onto the Deployment: the operator neither reads
	// nor caches ReplicaSets (four a store).
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			wr.failedCreate = c.Message
		}
	}
	return wr
}

func readStatefulSet(sts *appsv1.StatefulSet) workloadReading {
	desired := replicasOf(sts.Spec.Replicas)
	wr := workloadReading{
		kind: "StatefulSet", name: cachedStrings.shared(sts.Name),
		desired: desired, ready: sts.Status.ReadyReplicas,
		// Ready only once the current revision is rolled out everywhere
		// (kstatus' rule): an old ready pod does not make a new revision
		// ready.
		rolledOut: sts.Status.ObservedGeneration >= sts.Generation && sts.Status.UpdatedReplicas >= desired &&
			sts.Status.Replicas == desired && (sts.Status.UpdateRevision == "" || sts.Status.CurrentRevision == sts.Status.UpdateRevision),
		podsMissing: sts.Status.Replicas < desired,
	}
	for _, t := range sts.Spec.VolumeClaimTemplates {
		if q, ok := t.Spec.Resources.Requests[corev1.ResourceStorage]; ok && t.Name == "data" {
			wr.databaseVolume = cachedStrings.shared(q.String())
		}
	}
	return wr
}
