package realnode_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/realnode"
	"github.com/storefleet/storefleet/test/testenv"
)

// A pod from a locally built image runs under Pod Security "restricted" as
// the uid its manifest asks for, with its memory limit in the host's cgroup,
// and kubectl logs and exec reach it.
func TestRestrictedPodRunsAsItsUser(t *testing.T) {
	ns := restrictedNamespace(t, "rn-restricted")
	p := probePod(ns, "web", nil, "serve", "web", "8080")
	p.Spec.SecurityContext.RunAsUser = ptr.To(int64(4321))
	runPods(t, p)
	if p.Spec.NodeName != realnode.NodeName {
		t.Fatalf("pod ran on %q, want the real node %s", p.Spec.NodeName, realnode.NodeName)
	}
	if uid, err := kubectl("exec", "-n", ns, "web", "--", "id", "-u"); err != nil || uid != "4321" {
		t.Fatalf("uid inside the container = %q (%v), want 4321", uid, err)
	}
	if logs, err := kubectl("logs", "-n", ns, "web"); err != nil || !strings.Contains(logs, "serving web on [8080]") {
		t.Fatalf("kubectl logs = %q (%v)", logs, err)
	}
	cs := p.Status.ContainerStatuses[0]
	id := strings.TrimPrefix(cs.ContainerID, "containerd://")
	// The pod's QoS is burstable (requests below limits): its cgroup lives
	// under kubepods/burstable, named by the pod's UID.
	limitFile := fmt.Sprintf("/sys/fs/cgroup/memory/kubepods/burstable/pod%s/%s/memory.limit_in_bytes", p.UID, id)
	data, err := os.ReadFile(limitFile)
	if err != nil {
		t.Fatalf("read the container's cgroup: %v", err)
	}
	if got := strings.TrimSpace(string(data)); got != fmt.Sprint(64<<20) {
		t.Fatalf("memory limit in the cgroup = %s, want %d (64Mi)", got, 64<<20)
	}
}

// Pod Security "restricted" rejects a pod that would run as root.
func TestRestrictedNamespaceRejectsRoot(t *testing.T) {
	ns := restrictedNamespace(t, "rn-root")
	p := probePod(ns, "root", nil, "serve", "root", "8080")
	p.Spec.SecurityContext.RunAsNonRoot = nil
	p.Spec.SecurityContext.RunAsUser = ptr.To(int64(0))
	err := cluster.Client.Create(context.Background(), p)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("creating a root pod: %v, want Forbidden by Pod Security restricted", err)
	}
}

// Services resolve by name through the cluster DNS and answer on their
// ClusterIP from another pod; the ingress controller routes a host to its
// Service from the host side.
func TestServiceDNSAndIngress(t *testing.T) {
	ns := restrictedNamespace(t, "rn-dns")
	labels := map[string]string{"app": "web"}
	web := probePod(ns, "web", labels, "serve", "web", "8080")
	caller := probePod(ns, "caller", nil, "serve", "caller", "8080")
	runPods(t, web, caller)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	create(t, svc)
	expectReply(t, caller, "http://web."+ns+".svc.cluster.local/", "web")
	expectReply(t, caller, "http://web/", "web") // the pod's search path
	if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	expectReply(t, caller, "http://"+svc.Spec.ClusterIP+"/", "web")

	pathType := networkingv1.PathTypePrefix
	create(t, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(realnode.IngressClass),
			Rules: []networkingv1.IngressRule{{Host: "web.localhost", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}},
				}}},
			}}}},
		},
	})
	expectIngress(t, "web.localhost", "netprobe web")
	// kubectl get ingress shows where it answers: the controller wrote it.
	testenv.Eventually(t, 30*time.Second, "the Ingress's status address", func() (bool, error) {
		var ing networkingv1.Ingress
		if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, &ing); err != nil {
			return false, err
		}
		lb := ing.Status.LoadBalancer.Ingress
		return len(lb) == 1 && lb[0].IP == "127.0.0.1", nil
	})
}

// expectIngress requests http://<host>:<port>/ from the host the way a
// browser does for *.localhost (loopback, Host header), until it replies want.
func expectIngress(t *testing.T, host, want string) {
	t.Helper()
	url := strings.Replace(cluster.Node.IngressURL, "localhost", "127.0.0.1", 1) + "/"
	var got string
	testenv.Eventually(t, 30*time.Second, "http://"+host+" through the ingress", func() (bool, error) {
		got = ingressGet(host, url)
		return strings.TrimSpace(got) == want, nil
	}, func() string { return "last reply: " + got })
}

func ingressGet(host, url string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = host
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// A ResourceQuota rejects a pod over quota for real, and a container over
// its memory limit is OOMKilled by the kernel.
func TestQuotaAndOOMKill(t *testing.T) {
	ns := restrictedNamespace(t, "rn-quota")
	create(t, &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quota"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceLimitsMemory: resource.MustParse("128Mi")}},
	})
	testenv.Eventually(t, 30*time.Second, "quota observed", func() (bool, error) {
		var q corev1.ResourceQuota
		err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "quota"}, &q)
		return err == nil && len(q.Status.Hard) > 0, err
	})
	big := probePod(ns, "big", nil, "serve", "big", "8080")
	big.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("256Mi")
	err := cluster.Client.Create(context.Background(), big)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("a pod over the namespace's quota: %v, want Forbidden: exceeded quota", err)
	}

	hog := probePod(ns, "hog", nil, "alloc", "200")
	hog.Spec.RestartPolicy = corev1.RestartPolicyNever
	create(t, hog)
	waitPod(t, hog, func(p *corev1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				return true
			}
		}
		return false
	}, "terminated")
	if term := hog.Status.ContainerStatuses[0].State.Terminated; term.Reason != "OOMKilled" {
		t.Fatalf("a container allocating 200 MiB under a 64 MiB limit ended %q (exit %d), want OOMKilled", term.Reason, term.ExitCode)
	}
	expectDiagnosis(t, hog, "OOMKilled", "killed for exceeding its memory limit")
}

// The operator's diagnosis reads a real kubelet's statuses: a crash loop
// with the exit code behind it, an image that was never built (pulled from a
// registry that is not there, or absent under pull policy Never).
func TestOperatorDiagnosesRealFailures(t *testing.T) {
	ns := restrictedNamespace(t, "rn-diagnosis")
	crasher := probePod(ns, "crasher", nil, "fail", "3")
	unbuilt := probePod(ns, "unbuilt", nil, "serve", "unbuilt", "8080")
	unbuilt.Spec.Containers[0].Image = "localhost/storefleet/never-built:0.0.1"
	unbuilt.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
	absent := unbuilt.DeepCopy()
	absent.Name = "absent"
	absent.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	for _, p := range []*corev1.Pod{crasher, unbuilt, absent} {
		create(t, p)
	}
	expectDiagnosis(t, crasher, "CrashLoopBackOff", "last exited with code 3")
	expectDiagnosis(t, unbuilt, "ImagePullBackOff|ErrImagePull", "localhost/storefleet/never-built:0.0.1")
	expectDiagnosis(t, absent, "ErrImageNeverPull", "localhost/storefleet/never-built:0.0.1")
	if out, err := kubectl("logs", "-n", ns, "crasher", "--previous"); err != nil || !strings.Contains(out, "failing on purpose with exit code 3") {
		t.Errorf("kubectl logs --previous of the crash-looping pod: %q (%v)", out, err)
	}
}

// Data written to a volume of the real node's StorageClass survives the
// pod's deletion; deleting the claim removes the data from the host.
func TestLocalVolumeKeepsDataUntilItsClaimGoes(t *testing.T) {
	ns := restrictedNamespace(t, "rn-volume")
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(realnode.StorageClass),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if err := cluster.Client.Create(context.Background(), pvc); err != nil {
		t.Fatal(err)
	}
	withVolume := func(name string) *corev1.Pod {
		p := probePod(ns, name, nil, "serve", name, "8080")
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		return p
	}
	writer := withVolume("writer")
	runPods(t, writer)
	if out, err := kubectl("exec", "-n", ns, "writer", "--", "sh", "-c", "echo order-42 > /data/orders.txt"); err != nil {
		t.Fatalf("write to the volume: %v: %s", err, out)
	}
	if err := cluster.Client.Delete(context.Background(), writer); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "writer pod gone", func() (bool, error) {
		err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(writer), &corev1.Pod{})
		return apierrors.IsNotFound(err), nil
	})
	reader := withVolume("reader")
	runPods(t, reader)
	if out, err := kubectl("exec", "-n", ns, "reader", "--", "cat", "/data/orders.txt"); err != nil || out != "order-42" {
		t.Fatalf("the new pod reads %q (%v), want the data the deleted pod wrote", out, err)
	}

	if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(pvc), pvc); err != nil {
		t.Fatal(err)
	}
	var pv corev1.PersistentVolume
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: pvc.Spec.VolumeName}, &pv); err != nil {
		t.Fatal(err)
	}
	dir := pv.Spec.Local.Path
	if _, err := os.Stat(dir + "/orders.txt"); err != nil {
		t.Fatalf("the volume is not the directory %s on this machine: %v", dir, err)
	}
	if err := cluster.Client.Delete(context.Background(), reader); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Client.Delete(context.Background(), pvc); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, "the volume's directory and PV removed", func() (bool, error) {
		_, statErr := os.Stat(dir)
		err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: pv.Name}, &corev1.PersistentVolume{})
		return os.IsNotExist(statErr) && apierrors.IsNotFound(err), nil
	})
}
