package devcluster_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/gitserver"
	"github.com/storefleet/storefleet/test/testenv"
)

// cluster is shared by the tests of this package: one control plane with Flux.
var cluster *devcluster.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	start := time.Now()
	var err error
	cluster, err = devcluster.Start(ctx, devcluster.Options{Flux: true, Log: os.Stdout})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start the local cluster: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("local cluster with Flux started in %s\n", time.Since(start).Round(100*time.Millisecond))
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: stop the local cluster: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	testenv.Eventually(t, timeout, what, cond)
}

func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-", Labels: labels}}
	if err := cluster.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// restrictedContainer passes Pod Security "restricted".
func restrictedContainer(name string) corev1.Container {
	return corev1.Container{
		Name:  name,
		Image: "registry.example/app:1",
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To[int64](1000),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

func podTemplate(app string, labels map[string]string) corev1.PodTemplateSpec {
	l := map[string]string{"app": app}
	for k, v := range labels {
		l[k] = v
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: l},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{restrictedContainer(app)}},
	}
}

func TestWorkloadsBecomeReady(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, nil)
	c := cluster.Client

	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web", nil),
		},
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: podTemplate("db", nil),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					},
				},
			}},
		},
	}
	jobTemplate := podTemplate("migrate", nil)
	jobTemplate.Spec.RestartPolicy = corev1.RestartPolicyNever
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "migrate"},
		Spec:       batchv1.JobSpec{Template: jobTemplate},
	}
	for _, o := range []client.Object{deploy, sts, job} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}

	eventually(t, 30*time.Second, "deployment 2/2 ready", func() (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)
		return err == nil && deploy.Status.ReadyReplicas == 2 && deploy.Status.AvailableReplicas == 2, err
	})
	eventually(t, 30*time.Second, "statefulset ready with a bound PVC", func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(sts), sts); err != nil || sts.Status.ReadyReplicas != 1 {
			return false, err
		}
		var pvc corev1.PersistentVolumeClaim
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data-db-0"}, &pvc)
		return err == nil && pvc.Status.Phase == corev1.ClaimBound && *pvc.Spec.StorageClassName == devcluster.StorageClass, err
	})
	eventually(t, 30*time.Second, "job complete", func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return false, err
		}
		for _, cond := range job.Status.Conditions {
			if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// TestSimulatedNodeHasRoomForAFleet: the kwok node admits the requests of a
// few thousand stores (the fleet benchmark's 1000 did not fit kwok's default).
func TestSimulatedNodeHasRoomForAFleet(t *testing.T) {
	var node corev1.Node
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: devcluster.NodeName}, &node); err != nil {
		t.Fatal(err)
	}
	if mem := node.Status.Allocatable[corev1.ResourceMemory]; mem.Cmp(resource.MustParse("16Ti")) < 0 {
		t.Fatalf("node %s allocates %s of memory, want 16Ti", node.Name, mem.String())
	}
}

// TestSimulatedVolumesFollowTheirClaims: a claim of the kwok nodes' class
// gets a volume of its own, for simulated nodes only, and the volume goes
// with the claim.
func TestSimulatedVolumesFollowTheirClaims(t *testing.T) {
	ctx := context.Background()
	c := cluster.Client
	ns := newNamespace(t, nil)
	var claims []*corev1.PersistentVolumeClaim
	for i := range 20 {
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("data-%d", i)},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}},
			},
		}
		if err := c.Create(ctx, pvc); err != nil {
			t.Fatal(err)
		}
		claims = append(claims, pvc)
	}
	var volumes []string
	for _, pvc := range claims {
		eventually(t, 30*time.Second, pvc.Name+" bound", func() (bool, error) {
			err := c.Get(ctx, client.ObjectKeyFromObject(pvc), pvc)
			return err == nil && pvc.Status.Phase == corev1.ClaimBound, err
		})
		var pv corev1.PersistentVolume
		if err := c.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, &pv); err != nil {
			t.Fatal(err)
		}
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID || pv.Annotations["pv.kubernetes.io/provisioned-by"] != devcluster.SimulatedVolumeProvisioner {
			t.Fatalf("volume %s of %s: claimRef %+v, annotations %v", pv.Name, pvc.Name, pv.Spec.ClaimRef, pv.Annotations)
		}
		if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.String() != "2Gi" {
			t.Errorf("volume %s has %s, the claim asked for 2Gi", pv.Name, q.String())
		}
		if pv.Spec.NodeAffinity == nil || !strings.Contains(pv.Spec.NodeAffinity.String(), "kwok") {
			t.Errorf("volume %s is not limited to simulated nodes: %v", pv.Name, pv.Spec.NodeAffinity)
		}
		volumes = append(volumes, pv.Name)
	}
	for _, pvc := range claims {
		if err := c.Delete(ctx, pvc); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range volumes {
		eventually(t, 30*time.Second, "volume "+name+" deleted with its claim", func() (bool, error) {
			err := c.Get(ctx, client.ObjectKey{Name: name}, &corev1.PersistentVolume{})
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
	}
}

func TestNamespaceWithWorkloadsDeletesCompletely(t *testing.T) {
	ctx := context.Background()
	c := cluster.Client
	ns := newNamespace(t, nil)
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate("web", nil),
		},
	}
	if err := c.Create(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "deployment ready", func() (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)
		return err == nil && deploy.Status.ReadyReplicas == 2, err
	})
	if err := c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "namespace gone", func() (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
		return apierrors.IsNotFound(err), nil
	})
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Fatalf("%d pods left in deleted namespace %s", len(pods.Items), ns)
	}
}

func TestResourceQuotaIsObservedAndEnforced(t *testing.T) {
	ctx := context.Background()
	c := cluster.Client
	ns := newNamespace(t, nil)
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plan"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourcePods:        resource.MustParse("1"),
			corev1.ResourceLimitsCPU:   resource.MustParse("2"),
			corev1.ResourceRequestsCPU: resource.MustParse("1"),
		}},
	}
	if err := c.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "quota status.hard populated", func() (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(quota), quota)
		return err == nil && len(quota.Status.Hard) == 3, err
	})
	pod := func(name string) *corev1.Pod {
		ctr := restrictedContainer("app")
		ctr.Resources = corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{ctr}}}
	}
	if err := c.Create(ctx, pod("first")); err != nil {
		t.Fatalf("first pod within quota rejected: %v", err)
	}
	err := c.Create(ctx, pod("second"))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("second pod beyond the pods quota: got %v, want a Forbidden 'exceeded quota' error", err)
	}
}

func TestPodSecurityRestrictedRejectsPrivilegedPods(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "root"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
	err := cluster.Client.Create(ctx, bad)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted`) {
		t.Fatalf("pod without a restricted security context: got %v, want a PodSecurity violation", err)
	}
	good := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{restrictedContainer("app")}},
	}
	if err := cluster.Client.Create(ctx, good); err != nil {
		t.Fatalf("restricted-compliant pod rejected: %v", err)
	}
}

func TestFaultStagesSimulatePodFailures(t *testing.T) {
	ctx := context.Background()
	c := cluster.Client
	ns := newNamespace(t, nil)
	cases := []struct {
		fault       string
		wantPhase   corev1.PodPhase
		wantWaiting string
	}{
		{fault: devcluster.FaultCrashLoop, wantPhase: corev1.PodRunning, wantWaiting: "CrashLoopBackOff"},
		{fault: devcluster.FaultImagePull, wantPhase: corev1.PodPending, wantWaiting: "ImagePullBackOff"},
		{fault: devcluster.FaultPending, wantPhase: corev1.PodPending, wantWaiting: "ContainerCreating"},
		{fault: "", wantPhase: corev1.PodRunning},
	}
	for _, tc := range cases {
		name := tc.fault
		if name == "" {
			name = "healthy"
		}
		t.Run(name, func(t *testing.T) {
			labels := map[string]string{}
			if tc.fault != "" {
				labels[devcluster.FaultLabel] = tc.fault
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{restrictedContainer("app")}},
			}
			if err := c.Create(ctx, pod); err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "pod state "+name, func() (bool, error) {
				if err := c.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
					return false, err
				}
				if pod.Status.Phase != tc.wantPhase || len(pod.Status.ContainerStatuses) != 1 {
					return false, nil
				}
				st := pod.Status.ContainerStatuses[0]
				if tc.wantWaiting == "" {
					return st.Ready && st.State.Running != nil, nil
				}
				return !st.Ready && st.State.Waiting != nil && st.State.Waiting.Reason == tc.wantWaiting, nil
			})
			// The state must hold: kwok's healthy stage must not take the pod over.
			time.Sleep(2 * time.Second)
			if err := c.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
				t.Fatal(err)
			}
			if tc.fault != "" && pod.Status.ContainerStatuses[0].Ready {
				t.Fatalf("faulted pod %s became ready", name)
			}
		})
	}
}

// TestFluxHelmReleaseFromLocalGit serves a tiny chart from a bare repository
// over smart HTTP and has the real Flux controllers install it.
func TestFluxHelmReleaseFromLocalGit(t *testing.T) {
	ctx := context.Background()
	c := cluster.Client

	git, err := gitserver.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer git.Close()
	repoURL, err := git.Init("charts")
	if err != nil {
		t.Fatal(err)
	}
	pushTinyChart(t, repoURL)

	ns := newNamespace(t, nil)
	repo := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "source.toolkit.fluxcd.io/v1",
		"kind":       "GitRepository",
		"metadata":   map[string]any{"name": "charts", "namespace": devcluster.FluxNamespace},
		"spec": map[string]any{
			"url":      repoURL,
			"interval": "1m",
			"ref":      map[string]any{"branch": "main"},
		},
	}}
	release := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.toolkit.fluxcd.io/v2",
		"kind":       "HelmRelease",
		"metadata":   map[string]any{"name": "tiny", "namespace": devcluster.FluxNamespace},
		"spec": map[string]any{
			"interval":        "1m",
			"targetNamespace": ns,
			"chart": map[string]any{"spec": map[string]any{
				"chart":     "./tiny",
				"sourceRef": map[string]any{"kind": "GitRepository", "name": "charts"},
			}},
			"values": map[string]any{"greeting": "hello from flux"},
		},
	}}
	if err := cluster.Apply(ctx, repo, release); err != nil {
		t.Fatal(err)
	}
	// Flux retries a failed step with a growing back-off (0.75 s, doubling),
	// so a few transient failures on a loaded machine take a minute or two;
	// a failure says where the release stood and what the controllers logged.
	testenv.Eventually(t, 3*time.Minute, "HelmRelease Ready", func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(release), release); err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(release.Object, "status", "conditions")
		for _, cond := range conds {
			m := cond.(map[string]any)
			if m["type"] == "Ready" {
				if m["status"] == "True" {
					return true, nil
				}
				return false, fmt.Errorf("Ready=%v: %v", m["status"], m["message"])
			}
		}
		return false, fmt.Errorf("no Ready condition yet (finalizers %v, conditions %v)", release.GetFinalizers(), conds)
	}, fluxState(ctx, "GitRepository", "charts"), fluxState(ctx, "HelmChart", devcluster.FluxNamespace+"-tiny"),
		controllerLog("source-controller"), controllerLog("helm-controller"))
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tiny"}, &cm); err != nil {
		t.Fatalf("the chart's ConfigMap was not installed: %v", err)
	}
	if cm.Data["greeting"] != "hello from flux" {
		t.Fatalf("ConfigMap greeting = %q, want the HelmRelease value", cm.Data["greeting"])
	}
}

// fluxState describes a Flux source object in the Flux namespace for a
// failure message: its conditions, or why it could not be read.
func fluxState(ctx context.Context, kind, name string) func() string {
	return func() string {
		o := &unstructured.Unstructured{}
		o.SetAPIVersion("source.toolkit.fluxcd.io/v1")
		o.SetKind(kind)
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: devcluster.FluxNamespace, Name: name}, o); err != nil {
			return fmt.Sprintf("%s %s: %v", kind, name, err)
		}
		conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
		return fmt.Sprintf("%s %s: conditions %v", kind, name, conds)
	}
}

// controllerLog is the end of a Flux controller's log, for a failure
// message.
func controllerLog(name string) func() string {
	return func() string {
		data, err := os.ReadFile(filepath.Join(cluster.Workdir, name+".log"))
		if err != nil {
			return fmt.Sprintf("%s log: %v", name, err)
		}
		return name + " log (end):\n" + devcluster.LastLines(string(data), 25)
	}
}

// pushTinyChart commits a one-ConfigMap chart under tiny/ and pushes it.
func pushTinyChart(t *testing.T, repoURL string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"tiny/Chart.yaml":            "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
		"tiny/values.yaml":           "greeting: hello\n",
		"tiny/templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tiny\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "--initial-branch=main"},
		{"add", "."},
		{"-c", "user.name=test", "-c", "user.email=test@storefleet.dev", "commit", "-m", "tiny chart"},
		{"push", repoURL, "main"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// TestStopLeavesNothingBehind starts a second cluster beside the shared one
// (so several clusters run at once) and checks that stopping it leaves no
// process and no listener.
func TestStopLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	second, err := devcluster.Start(ctx, devcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(second.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	pids := second.ComponentPIDs()
	if len(pids) < 5 {
		t.Fatalf("expected at least 5 component processes (etcd, apiserver, controller-manager, scheduler, kwok), got %d", len(pids))
	}
	workdir := second.Workdir
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if devcluster.Alive(pid) {
			t.Errorf("process %d still running after Stop", pid)
		}
	}
	if conn, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		conn.Close()
		t.Errorf("API server address %s still accepts connections after Stop", u.Host)
	}
	if _, err := os.Stat(workdir); !os.IsNotExist(err) {
		t.Errorf("workdir %s not removed: %v", workdir, err)
	}
	// The shared cluster is unaffected.
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: devcluster.NodeName}, &corev1.Node{}); err != nil {
		t.Fatalf("shared cluster broken by stopping another: %v", err)
	}
}
