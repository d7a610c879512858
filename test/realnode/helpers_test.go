package realnode_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/realnode"
	"github.com/storefleet/storefleet/reconciler"
	"github.com/storefleet/storefleet/test/testenv"
)

// probePod is a netprobe pod for the real node that passes Pod Security
// "restricted": non-root uid, no privilege escalation, no capabilities,
// RuntimeDefault seccomp.
func probePod(ns, name string, labels map[string]string, args ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "probe", Image: probeImage, ImagePullPolicy: corev1.PullNever, Args: args,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	realnode.OnNode(&p.Spec)
	return p
}

// create creates obj and deletes it when the test ends.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := cluster.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(context.Background(), obj) })
}

// runPods creates the pods and waits until each is Running and Ready on the
// real node.
func runPods(t *testing.T, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		create(t, p)
	}
	for _, p := range pods {
		waitPod(t, p, func(p *corev1.Pod) bool { return isReady(p) }, "Running and Ready")
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// waitPod waits for cond on the pod, with its status in the failure message.
func waitPod(t *testing.T, p *corev1.Pod, cond func(*corev1.Pod) bool, what string) {
	t.Helper()
	testenv.Eventually(t, 90*time.Second, fmt.Sprintf("pod %s/%s %s", p.Namespace, p.Name, what), func() (bool, error) {
		if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
			return false, err
		}
		return cond(p), nil
	}, func() string {
		return fmt.Sprintf("phase %s, node %q, containers %+v", p.Status.Phase, p.Spec.NodeName, p.Status.ContainerStatuses)
	})
}

// kubectl runs the cluster's kubectl and returns its output.
func kubectl(args ...string) (string, error) {
	cmd := exec.Command(cluster.KubectlBinary(), append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// fetch runs `netprobe get url` inside the pod and returns the reply (or
// the error line netprobe prints).
func fetch(p *corev1.Pod, url string) string {
	out, _ := kubectl("exec", "-n", p.Namespace, p.Name, "--", "netprobe", "get", url)
	return out
}

// expectReply checks that a request from the pod gets the named netprobe's
// reply; retried, since a new pod's policy rules and a new Service's
// endpoints arrive within a second or two.
func expectReply(t *testing.T, from *corev1.Pod, url, name string) {
	t.Helper()
	want := "netprobe " + name
	var got string
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%s reaching %s (%s)", from.Name, url, name), func() (bool, error) {
		got = fetch(from, url)
		return got == want, nil
	}, func() string { return "last reply: " + got })
}

// expectRefused checks that the request keeps failing: no reply from the
// application for several tries (a port-open check would prove nothing, as
// egress here passes a proxy that accepts any connection).
func expectRefused(t *testing.T, from *corev1.Pod, url string) {
	t.Helper()
	for i := 0; i < 3; i++ {
		if got := fetch(from, url); strings.HasPrefix(got, "netprobe ") {
			t.Fatalf("%s reached %s, which its policies forbid: %q", from.Name, url, got)
		}
	}
}

func podIP(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	if p.Status.PodIP == "" {
		t.Fatalf("pod %s has no IP", p.Name)
	}
	return p.Status.PodIP
}

// expectDiagnosis waits until the operator's reading of the pod is a failure
// whose reason is one of reasons ("A|B") and whose message mentions detail.
func expectDiagnosis(t *testing.T, p *corev1.Pod, reasons, detail string) {
	t.Helper()
	var d *v1alpha1.Diagnosis
	testenv.Eventually(t, 90*time.Second, fmt.Sprintf("the operator diagnosing pod %s as %s", p.Name, reasons), func() (bool, error) {
		if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
			return false, err
		}
		var failure bool
		d, failure = reconciler.PodDiagnosis(p, 5*time.Minute, time.Now())
		return failure && d != nil && slices.Contains(strings.Split(reasons, "|"), d.Reason) && strings.Contains(d.Message, detail), nil
	}, func() string { return fmt.Sprintf("diagnosis %+v, containers %+v", d, p.Status.ContainerStatuses) })
}
