package realnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Addons are the images of the cluster services that run as pods on the
// real node, so NetworkPolicies see them as the pods they are in a real
// cluster: the store namespaces' DNS egress allow selects CoreDNS's pods, and
// the chart's ingress allow selects the ingress controller's
// (cmd/localingress).
type Addons struct {
	CoreDNSImage, IngressImage string
	// IngressAddr is the loopback address the ingress answers on
	// ("127.0.0.1:0" picks a free port).
	IngressAddr string
}

const (
	// IngressNamespace and IngressClass are the local environment's ingress
	// controller; clusters/local's store values select them.
	IngressNamespace = "local-ingress"
	IngressClass     = "local"
	// IngressController is the IngressClass's controller name.
	IngressController = "storefleet.dev/local-ingress"
	// IngressPodLabel is the label value (app.kubernetes.io/name) of the
	// ingress controller's pods, which the store chart's policy allows in;
	// also the name of its Deployment, Service and account.
	IngressPodLabel   = "local-ingress"
	fieldOwner        = "storefleet-realnode"
	ingressPort       = 8000
	ingressHealthPort = 8080
)

// OnNode makes a pod spec run on the real node: the toleration of Taint and
// the node selector on Label.
func OnNode(spec *corev1.PodSpec) {
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	spec.NodeSelector[Label] = "true"
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: Label, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule})
}

// restricted is a container security context that passes Pod Security
// "restricted".
func restricted(uid int64) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(uid),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func (n *Node) startAddons(ctx context.Context) error {
	if n.cfg.Addons.CoreDNSImage == "" || n.cfg.Addons.IngressImage == "" {
		return errors.New("realnode: the CoreDNS and ingress controller images are required (Config.Addons)")
	}
	objs := append(coreDNSObjects(n.cfg.Addons.CoreDNSImage), ingressObjects(n.cfg.Addons.IngressImage)...)
	objs = append(objs, storageClass())
	for _, o := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return err
		}
		apply := client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u})
		if err := n.cfg.Client.Apply(ctx, apply, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %T %s: %w", o, o.GetName(), err)
		}
	}
	n.stopPV = startProvisioner(n.cfg.Client, n.l.volumes(), n.cfg.Log)
	for _, d := range []struct{ ns, name string }{{"kube-system", "coredns"}, {IngressNamespace, IngressPodLabel}} {
		if err := n.waitDeployment(ctx, d.ns, d.name); err != nil {
			return err
		}
	}
	var svc corev1.Service
	if err := n.cfg.Client.Get(ctx, client.ObjectKey{Namespace: IngressNamespace, Name: IngressPodLabel}, &svc); err != nil {
		return err
	}
	addr := n.cfg.Addons.IngressAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	port, stop, err := forward(addr, net.JoinHostPort(svc.Spec.ClusterIP, "80"), n.cfg.Log)
	if err != nil {
		return err
	}
	n.stopFwd = stop
	n.IngressURL = fmt.Sprintf("http://localhost:%d", port)
	return nil
}

func (n *Node) waitDeployment(ctx context.Context, ns, name string) error {
	return waitFor(ctx, 90*time.Second, "Deployment "+ns+"/"+name+" available on "+NodeName, nil, func() error {
		var d appsv1.Deployment
		if err := n.cfg.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			return err
		}
		if d.Status.ReadyReplicas < 1 {
			return n.podProblem(ctx, ns, d.Spec.Selector.MatchLabels)
		}
		return nil
	})
}

// podProblem describes why a pod is not ready yet, for the timeout message.
func (n *Node) podProblem(ctx context.Context, ns string, labels map[string]string) error {
	var pods corev1.PodList
	if err := n.cfg.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
		return err
	}
	if len(pods.Items) == 0 {
		return errors.New("no pod yet")
	}
	p := pods.Items[0]
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil {
			return fmt.Errorf("pod %s: %s: %s", p.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
		}
	}
	return fmt.Errorf("pod %s: %s", p.Name, p.Status.Phase)
}

func typed[T client.Object](o T, kind, apiVersion string) T {
	o.GetObjectKind().SetGroupVersionKind(schemaGVK(apiVersion, kind))
	return o
}

func coreDNSObjects(image string) []client.Object {
	labels := map[string]string{"k8s-app": "kube-dns"}
	corefile := `.:53 {
    errors
    health :8080
    ready :8181
    kubernetes ` + ClusterDomain + ` in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    loadbalance
}
`
	spec := corev1.PodSpec{
		ServiceAccountName: "coredns",
		// The host's resolver, for names outside the cluster.
		DNSPolicy:       corev1.DNSDefault,
		SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "53"}}},
		Containers: []corev1.Container{{
			Name: "coredns", Image: image, ImagePullPolicy: corev1.PullNever,
			Args: []string{"-conf", "/etc/coredns/Corefile"},
			Ports: []corev1.ContainerPort{
				{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
			},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8181)}}, PeriodSeconds: 2},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 10},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: mustQ("50m"), corev1.ResourceMemory: mustQ("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: mustQ("170Mi")},
			},
			VolumeMounts:    []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
			SecurityContext: restricted(65532),
		}},
		Volumes:                       []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"}}}}},
		TerminationGracePeriodSeconds: ptr.To(int64(5)),
	}
	OnNode(&spec)
	return []client.Object{
		typed(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}}, "ServiceAccount", "v1"),
		typed(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "storefleet:coredns"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		}}, "ClusterRole", "rbac.authorization.k8s.io/v1"),
		typed(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "storefleet:coredns"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "storefleet:coredns"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "kube-system", Name: "coredns"}},
		}, "ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
		typed(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Data: map[string]string{"Corefile": corefile}}, "ConfigMap", "v1"),
		typed(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns", Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
			}}, "Deployment", "apps/v1"),
		typed(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns", Labels: labels},
			Spec: corev1.ServiceSpec{
				ClusterIP: DNSServiceIP, Selector: labels,
				Ports: []corev1.ServicePort{
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
					{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				},
			}}, "Service", "v1"),
	}
}

func ingressObjects(image string) []client.Object {
	labels := map[string]string{"app.kubernetes.io/name": IngressPodLabel}
	spec := corev1.PodSpec{
		ServiceAccountName: IngressPodLabel,
		Containers: []corev1.Container{{
			Name: "controller", Image: image, ImagePullPolicy: corev1.PullNever,
			Args: []string{
				"--class=" + IngressClass,
				fmt.Sprintf("--listen=:%d", ingressPort),
				fmt.Sprintf("--health-listen=:%d", ingressHealthPort),
				// Ingress status says where the stores answer.
				"--status-ip=127.0.0.1",
			},
			Ports:          []corev1.ContainerPort{{Name: "web", ContainerPort: ingressPort}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ping", Port: intstr.FromInt32(ingressHealthPort)}}, PeriodSeconds: 2},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: mustQ("50m"), corev1.ResourceMemory: mustQ("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: mustQ("128Mi")},
			},
			SecurityContext: restricted(65532),
		}},
		TerminationGracePeriodSeconds: ptr.To(int64(5)),
	}
	OnNode(&spec)
	role := "storefleet:" + IngressPodLabel
	return []client.Object{
		typed(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: IngressNamespace}}, "Namespace", "v1"),
		typed(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: IngressNamespace, Name: IngressPodLabel}}, "ServiceAccount", "v1"),
		typed(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses/status"}, Verbs: []string{"patch", "update"}},
		}}, "ClusterRole", "rbac.authorization.k8s.io/v1"),
		typed(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: IngressNamespace, Name: IngressPodLabel}},
		}, "ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
		typed(&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: IngressClass},
			Spec: networkingv1.IngressClassSpec{Controller: IngressController}}, "IngressClass", "networking.k8s.io/v1"),
		typed(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: IngressNamespace, Name: IngressPodLabel, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
			}}, "Deployment", "apps/v1"),
		typed(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: IngressNamespace, Name: IngressPodLabel, Labels: labels},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromInt32(ingressPort)}}},
		}, "Service", "v1"),
	}
}

// forward relays TCP connections from a loopback address to target (the
// ingress Service's ClusterIP, which the host reaches through kube-proxy):
// http://<store>.localhost:<port>/ then resolves to loopback without DNS in
// browsers and curl, and the ingress controller still sees a pod-network
// client like in a real cluster.
func forward(listen, target string, log io.Writer) (port int, stop func(), err error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return 0, nil, fmt.Errorf("listen for the ingress on %s: %w", listen, err)
	}
	done := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				select {
				case <-done:
					return
				default:
					fmt.Fprintf(log, "ingress relay: %v\n", err)
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			go relay(c, target)
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, func() { close(done); l.Close() }, nil
}

func relay(c net.Conn, target string) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
	_, _ = io.Copy(c, up)
}
