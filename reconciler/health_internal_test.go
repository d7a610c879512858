package reconciler

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// The health tests read typed objects from an in-memory client: no cluster.

const healthNamespace = "store-s"

var (
	backend  = workload{"Deployment", "medusa-backend", "backend"}
	database = workload{"StatefulSet", "postgres", "database"}
)

// healthReconciler serves objs to the health step as the cache and the API
// server would, with a 5-minute pod start timeout.
func healthReconciler(t *testing.T, objs ...client.Object) (*StoreReconciler, *scope) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
	r := &StoreReconciler{Client: c, APIReader: c, Options: Options{PodStartTimeout: 5 * time.Minute}}
	return r, &scope{namespace: healthNamespace, store: &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "u-shop"}}}
}

// ago is a creation time d before now.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(time.Now().Add(-d)) }

func objectMeta(name string, created time.Duration, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: healthNamespace, Name: name, Labels: labels, CreationTimestamp: ago(created), Generation: 1}
}

func deployment(replicas int32, status appsv1.DeploymentStatus) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/component": "backend"}
	return &appsv1.Deployment{
		ObjectMeta: objectMeta("medusa-backend", time.Hour, labels),
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels}},
		Status:     status,
	}
}

func statefulSet(status appsv1.StatefulSetStatus) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: objectMeta("postgres", time.Hour, map[string]string{"app.kubernetes.io/component": "database"}),
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1)},
		Status:     status,
	}
}

// pod is a pod of component created created ago, in phase with the given
// condition and container statuses.
func pod(name, component string, created time.Duration, phase corev1.PodPhase, conds []corev1.PodCondition, init, containers []corev1.ContainerStatus) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: objectMeta(name, created, map[string]string{"app.kubernetes.io/component": component}),
		Status:     corev1.PodStatus{Phase: phase, Conditions: conds, InitContainerStatuses: init, ContainerStatuses: containers},
	}
}

func waiting(name, reason, message string) []corev1.ContainerStatus {
	return []corev1.ContainerStatus{{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}}
}

func failedCreateEvent(name, message string, at time.Duration) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: healthNamespace, Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: "StatefulSet", Name: "postgres", Namespace: healthNamespace},
		Reason:         "FailedCreate", Message: message, LastTimestamp: ago(at),
	}
}

func TestWorkloadHealth(t *testing.T) {
	available := func(n int32) appsv1.DeploymentStatus {
		return appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
	}
	cases := []struct {
		name     string
		workload workload
		objs     []client.Object

		wantReady     bool
		wantMessage   string
		wantDiagnosis *v1alpha1.Diagnosis
		wantFailure   bool
	}{
		{name: "Deployment missing", workload: backend,
			wantMessage: "Deployment medusa-backend not found"},
		{name: "StatefulSet missing", workload: database,
			wantMessage: "StatefulSet postgres not found"},
		{name: "Deployment rolled out and available", workload: backend, objs: []client.Object{deployment(2, available(2))},
			wantReady: true, wantMessage: "Deployment medusa-backend: 2/2 ready"},
		{name: "Deployment's new generation not observed yet", workload: backend, objs: []client.Object{func() client.Object {
			d := deployment(1, available(1))
			d.Generation = 2
			return d
		}()},
			wantMessage: "Deployment medusa-backend: 1/1 ready"},
		{name: "Deployment with an old pod left over", workload: backend, objs: []client.Object{deployment(1, appsv1.DeploymentStatus{
			ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 2})},
			wantMessage: "Deployment medusa-backend: 2/1 ready"},
		{name: "Deployment's pods over quota", workload: backend, objs: []client.Object{deployment(1, appsv1.DeploymentStatus{
			ObservedGeneration: 1, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
				Message: `pods "medusa-backend-1" is forbidden: exceeded quota: store-quota`}}})},
			wantMessage:   "Deployment medusa-backend: 0/1 ready",
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "QuotaExceeded", Message: `pods "medusa-backend-1" is forbidden: exceeded quota: store-quota`, Object: "Deployment medusa-backend"},
			wantFailure:   true},
		{name: "Deployment's pods refused by pod security", workload: backend, objs: []client.Object{
			deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 1, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
				Message: `pods "medusa-backend-abc-1" is forbidden: violates PodSecurity "restricted:latest"`}}}),
		},
			wantMessage:   "Deployment medusa-backend: 0/1 ready",
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "FailedCreate", Message: `pods "medusa-backend-abc-1" is forbidden: violates PodSecurity "restricted:latest"`, Object: "Deployment medusa-backend"},
			wantFailure:   true},
		{name: "Deployment not ready because its pod crash-loops", workload: backend, objs: []client.Object{
			deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1}),
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodRunning, nil, nil, waiting("medusa", "CrashLoopBackOff", "back-off 10s restarting failed container")),
		},
			wantMessage:   "Deployment medusa-backend: 0/1 ready",
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "CrashLoopBackOff", Message: "CrashLoopBackOff: back-off 10s restarting failed container", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "StatefulSet rolled out and ready", workload: database, objs: []client.Object{statefulSet(appsv1.StatefulSetStatus{
			ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, CurrentRevision: "postgres-1", UpdateRevision: "postgres-1"})},
			wantReady: true, wantMessage: "StatefulSet postgres: 1/1 ready"},
		{name: "StatefulSet's new revision not rolled out", workload: database, objs: []client.Object{statefulSet(appsv1.StatefulSetStatus{
			ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, CurrentRevision: "postgres-1", UpdateRevision: "postgres-2"})},
			wantMessage: "StatefulSet postgres: 1/1 ready"},
		{name: "StatefulSet's pod not created: the latest FailedCreate event says why", workload: database, objs: []client.Object{
			statefulSet(appsv1.StatefulSetStatus{ObservedGeneration: 1}),
			failedCreateEvent("postgres.1", "create Pod postgres-0 failed: old reason", time.Hour),
			failedCreateEvent("postgres.2", "create Pod postgres-0 in StatefulSet postgres failed: exceeded quota: store-quota", time.Minute),
		},
			wantMessage:   "StatefulSet postgres: 0/1 ready",
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "QuotaExceeded", Message: "create Pod postgres-0 in StatefulSet postgres failed: exceeded quota: store-quota", Object: "StatefulSet postgres"},
			wantFailure:   true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, sc := healthReconciler(t, tc.objs...)
			st, err := r.workloadHealth(context.Background(), sc, tc.workload)
			if err != nil {
				t.Fatal(err)
			}
			if st.ready != tc.wantReady || st.message != tc.wantMessage || st.failure != tc.wantFailure {
				t.Errorf("ready %v, message %q, failure %v; want %v, %q, %v", st.ready, st.message, st.failure, tc.wantReady, tc.wantMessage, tc.wantFailure)
			}
			if !equalDiagnosis(st.diagnosis, tc.wantDiagnosis) {
				t.Errorf("diagnosis %+v, want %+v", st.diagnosis, tc.wantDiagnosis)
			}
		})
	}
}

func TestPodDiagnosis(t *testing.T) {
	unschedulable := []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available: 1 Insufficient memory."}}
	cases := []struct {
		name     string
		workload workload
		objs     []client.Object

		wantDiagnosis *v1alpha1.Diagnosis
		wantFailure   bool
	}{
		{name: "no pods", workload: backend},
		{name: "a container crash-looping after the kernel killed it for its memory", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodRunning, nil, nil, []corev1.ContainerStatus{{
				Name: "medusa", RestartCount: 3,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}},
			}}),
		},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "OOMKilled", Message: "container medusa was killed for exceeding its memory limit (exit code 137, 3 restarts); the plan's memory limit is too small for it", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "a Job's container OOMKilled without restarting", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodFailed, nil, nil, []corev1.ContainerStatus{{
				Name: "medusa", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}},
			}}),
		},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "OOMKilled", Message: "container medusa was killed for exceeding its memory limit (exit code 137, 0 restarts); the plan's memory limit is too small for it", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "unschedulable, still within the start timeout", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodPending, unschedulable, nil, nil)},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "Unschedulable", Message: "0/1 nodes are available: 1 Insufficient memory.", Object: "pod medusa-backend-1"}},
		{name: "unschedulable beyond the start timeout", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Hour, corev1.PodPending, unschedulable, nil, nil)},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "Unschedulable", Message: "0/1 nodes are available: 1 Insufficient memory.", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "crash loop fails at once", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodRunning, nil, nil, waiting("medusa", "CrashLoopBackOff", "back-off 10s"))},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "CrashLoopBackOff", Message: "CrashLoopBackOff: back-off 10s", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "init container cannot pull its image", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodPending, nil, waiting("migrate", "ImagePullBackOff", ""), waiting("medusa", "PodInitializing", ""))},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "ImagePullBackOff", Message: "ImagePullBackOff:", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "an image the node does not have under pull policy Never", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodPending, nil, nil, waiting("medusa", "ErrImageNeverPull", `Container image "localhost/storefleet/medusa:none" is not present with pull policy of Never`))},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "ErrImageNeverPull", Message: `ErrImageNeverPull: Container image "localhost/storefleet/medusa:none" is not present with pull policy of Never`, Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "a crash loop says how the container last exited", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodRunning, nil, nil, []corev1.ContainerStatus{{
				Name: "medusa", RestartCount: 2,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s restarting failed container=medusa"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}},
			}})},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "CrashLoopBackOff", Message: "CrashLoopBackOff: back-off 20s restarting failed container=medusa (container medusa last exited with code 1, Error; 2 restarts)", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "container still starting", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Minute, corev1.PodPending, nil, nil, waiting("medusa", "ContainerCreating", ""))},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "Starting", Message: "container medusa waiting: ContainerCreating", Object: "pod medusa-backend-1"}},
		{name: "container not started within the timeout", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Hour, corev1.PodPending, nil, nil, waiting("medusa", "ContainerCreating", "pulling image"))},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "StartTimeout", Message: "container medusa waiting: ContainerCreating: pulling image (not started within 5m0s)", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "pending pod without statuses beyond the timeout", workload: backend, objs: []client.Object{
			pod("medusa-backend-1", "backend", time.Hour, corev1.PodPending, nil, nil, nil)},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "StartTimeout", Message: "pending for more than 5m0s", Object: "pod medusa-backend-1"},
			wantFailure:   true},
		{name: "terminating pod and other components are not looked at", workload: backend, objs: []client.Object{
			func() client.Object {
				p := pod("medusa-backend-1", "backend", time.Minute, corev1.PodRunning, nil, nil, waiting("medusa", "CrashLoopBackOff", ""))
				p.DeletionTimestamp, p.Finalizers = ptr.To(metav1.Now()), []string{"test/keep"}
				return p
			}(),
			pod("storefront-1", "storefront", time.Minute, corev1.PodRunning, nil, nil, waiting("storefront", "CrashLoopBackOff", "")),
		}},
		{name: "the first pod by name explains", workload: backend, objs: []client.Object{
			pod("medusa-backend-b", "backend", time.Minute, corev1.PodRunning, nil, nil, waiting("medusa", "CrashLoopBackOff", "b")),
			pod("medusa-backend-a", "backend", time.Minute, corev1.PodPending, nil, nil, waiting("medusa", "ContainerCreating", "")),
		},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "Starting", Message: "container medusa waiting: ContainerCreating", Object: "pod medusa-backend-a"}},
		{name: "database volume not bound beyond the timeout", workload: database, objs: []client.Object{
			&corev1.PersistentVolumeClaim{ObjectMeta: objectMeta("data-postgres-0", time.Hour, nil), Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}},
			wantDiagnosis: &v1alpha1.Diagnosis{Reason: "VolumeUnbound", Message: "PersistentVolumeClaim data-postgres-0 is not bound after 5m0s", Object: "pvc data-postgres-0"},
			wantFailure:   true},
		{name: "database volume still binding", workload: database, objs: []client.Object{
			&corev1.PersistentVolumeClaim{ObjectMeta: objectMeta("data-postgres-0", time.Minute, nil), Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}}},
		{name: "a Deployment's claims are not its concern", workload: backend, objs: []client.Object{
			&corev1.PersistentVolumeClaim{ObjectMeta: objectMeta("data-postgres-0", time.Hour, nil), Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, sc := healthReconciler(t, tc.objs...)
			d, failure, err := r.podDiagnosis(context.Background(), sc, tc.workload)
			if err != nil {
				t.Fatal(err)
			}
			if !equalDiagnosis(d, tc.wantDiagnosis) || failure != tc.wantFailure {
				t.Errorf("diagnosis %+v, failure %v; want %+v, %v", d, failure, tc.wantDiagnosis, tc.wantFailure)
			}
		})
	}
}

func equalDiagnosis(a, b *v1alpha1.Diagnosis) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func TestStoreRuntime(t *testing.T) {
	kwokNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kwok-0", Annotations: map[string]string{v1alpha1.SimulatedNodeAnnotation: "fake"}}}
	realNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "real-0"}}
	on := func(name, node string) *corev1.Pod {
		p := pod(name, "backend", time.Minute, corev1.PodRunning, nil, nil, nil)
		p.Spec.NodeName = node
		return p
	}
	cases := []struct {
		name string
		objs []client.Object
		want v1alpha1.Runtime
	}{
		{name: "no pods yet", objs: []client.Object{kwokNode, realNode}},
		{name: "unscheduled pods say nothing", objs: []client.Object{kwokNode, on("a", "")}},
		{name: "every pod on kwok", objs: []client.Object{kwokNode, on("a", "kwok-0"), on("b", "kwok-0")}, want: v1alpha1.RuntimeSimulated},
		{name: "every pod on a kubelet", objs: []client.Object{realNode, on("a", "real-0")}, want: v1alpha1.RuntimeReal},
		{name: "both", objs: []client.Object{kwokNode, realNode, on("a", "real-0"), on("b", "kwok-0")}, want: v1alpha1.RuntimeMixed},
		{name: "a pod on a node that is gone is skipped", objs: []client.Object{kwokNode, on("a", "kwok-0"), on("b", "gone")}, want: v1alpha1.RuntimeSimulated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, sc := healthReconciler(t, tc.objs...)
			got, err := r.storeRuntime(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("runtime %q, want %q", got, tc.want)
			}
		})
	}
}

// An idle store's check reads no pods: the runtime is found again from the
// live pods only when the cached pods' versions moved (a pod scheduled,
// replaced or written).
func TestStoreRuntimeReadsPodsOnlyWhenTheyChanged(t *testing.T) {
	kwokNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kwok-0", Annotations: map[string]string{v1alpha1.SimulatedNodeAnnotation: "fake"}}}
	realNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "real-0"}}
	p := pod("a", "backend", time.Minute, corev1.PodRunning, nil, nil, nil)
	p.Spec.NodeName = "kwok-0"
	var liveLists int
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(kwokNode, realNode, p).Build()
	live := interceptor.NewClient(c, interceptor.Funcs{List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if _, ok := list.(*corev1.PodList); ok {
			liveLists++
		}
		return cl.List(ctx, list, opts...)
	}})
	r := &StoreReconciler{Client: c, APIReader: live}
	store := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "u-shop"}}
	check := func(want v1alpha1.Runtime, wantLists int) {
		t.Helper()
		got, err := r.storeRuntime(context.Background(), &scope{namespace: healthNamespace, store: store})
		if err != nil {
			t.Fatal(err)
		}
		if got != want || liveLists != wantLists {
			t.Errorf("runtime %q after %d live pod lists; want %q after %d", got, liveLists, want, wantLists)
		}
	}
	check(v1alpha1.RuntimeSimulated, 1)
	check(v1alpha1.RuntimeSimulated, 1) // nothing changed: no read
	second := pod("b", "storefront", time.Minute, corev1.PodRunning, nil, nil, nil)
	second.Spec.NodeName = "real-0"
	if err := c.Create(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	check(v1alpha1.RuntimeMixed, 2)
	check(v1alpha1.RuntimeMixed, 2)
	r.runtimes.forget(store.UID)
	check(v1alpha1.RuntimeMixed, 3) // a store seen anew is read again
}

// A migration Job refused by the quota keeps the new Medusa pods waiting in
// their init container forever: the diagnosis names the Job, not "Starting".
func TestMigrationRefusedByQuotaIsDiagnosed(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: objectMeta("medusa-migrate-2", time.Minute, map[string]string{"app.kubernetes.io/component": "migrate"})}
	refused := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: healthNamespace, Name: "medusa-migrate-2.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: "medusa-migrate-2", Namespace: healthNamespace},
		Reason:         "FailedCreate", LastTimestamp: ago(time.Second),
		Message: `Error creating: pods "medusa-migrate-2-x" is forbidden: exceeded quota: store-quota, requested: limits.cpu=1, used: limits.cpu=6, limited: limits.cpu=6`,
	}
	waitingPod := pod("medusa-backend-new", "backend", time.Minute, corev1.PodPending, nil, waiting("await-release", "PodInitializing", ""), waiting("medusa", "PodInitializing", ""))
	r, sc := healthReconciler(t, deployment(1, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1}), waitingPod, job, refused)
	st, err := r.workloadHealth(context.Background(), sc, backend)
	if err != nil {
		t.Fatal(err)
	}
	if st.diagnosis == nil || st.diagnosis.Reason != "QuotaExceeded" || st.diagnosis.Object != "Job medusa-migrate-2" || !st.failure {
		t.Fatalf("diagnosis %+v (failure %v), want QuotaExceeded on Job medusa-migrate-2", st.diagnosis, st.failure)
	}
	// Once the Job has run, the waiting pods are just starting.
	job.Status.Succeeded = 1
	r, sc = healthReconciler(t, deployment(1, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1}), waitingPod.DeepCopy(), job, refused)
	if st, _ := r.workloadHealth(context.Background(), sc, backend); st.diagnosis == nil || st.diagnosis.Reason != "Starting" || st.failure {
		t.Fatalf("after the Job succeeded: %+v", st.diagnosis)
	}
}

// Health reads a store's workloads live (the cache holds their metadata
// only), once a reconcile and only when their versions moved: an idle
// store's check reads none, and a rollout's new status is read.
func TestWorkloadsAreReadLiveOnlyWhenTheirVersionsMoved(t *testing.T) {
	d := deployment(1, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 1})
	sts := statefulSet(appsv1.StatefulSetStatus{Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1, ObservedGeneration: 1})
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("7Gi")}}}}}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(d, sts).Build()
	var liveLists int
	live := interceptor.NewClient(c, interceptor.Funcs{List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		switch list.(type) {
		case *appsv1.DeploymentList, *appsv1.StatefulSetList:
			liveLists++
		}
		return cl.List(ctx, list, opts...)
	}})
	r := &StoreReconciler{Client: c, APIReader: live}
	store := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "u-shop"}}
	check := func(wantReady bool, wantLists int) {
		t.Helper()
		sc := &scope{namespace: healthNamespace, store: store}
		st, err := r.workloadHealth(context.Background(), sc, backend)
		if err != nil {
			t.Fatal(err)
		}
		size, err := r.databaseVolumeSize(context.Background(), sc)
		if err != nil {
			t.Fatal(err)
		}
		if st.ready != wantReady || size != "7Gi" || liveLists != wantLists {
			t.Errorf("backend ready %v, database volume %q after %d live lists; want %v, 7Gi after %d", st.ready, size, liveLists, wantReady, wantLists)
		}
	}
	check(true, 2)                 // a Deployment and a StatefulSet LIST, shared by health and the plan
	check(true, 2)                 // nothing changed: no read
	d.Status.AvailableReplicas = 0 // a pod went away
	if err := c.Status().Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	check(false, 4)
	check(false, 4)
	r.workloads.forget(store.UID)
	check(false, 6) // a store seen anew is read again
}
