package devcluster

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

// SimulatedVolumeProvisioner provisions the claims of StorageClass, the
// kwok nodes' class: a PV backed by nothing, bound to its claim, deleted
// when the claim is (reclaim policy Delete; the controller-manager marks it
// Released).
//
// kwok's own volume stages did this, but kwok plays the stages of resources
// other than pods and nodes one at a time: with a few hundred stores
// starting at once, claims waited minutes for a volume (about one a second
// on the 2-core machine) and their stores' pods outlived the operator's
// pod start timeout, unschedulable. Here a watch feeds a few workers.
const SimulatedVolumeProvisioner = "storefleet.dev/simulated-volume"

// volumeWorkers create and delete PVs in parallel.
const volumeWorkers = 8

// simulatedNodeLabel (value "kwok") marks the kwok nodes.
const simulatedNodeLabel = "type"

// provisionedByAnnotation is what provisioners record on their PVs (the
// controller-manager leaves such a PV's deletion to its provisioner).
const provisionedByAnnotation = "pv.kubernetes.io/provisioned-by"

// startSimulatedVolumes runs the provisioner until the returned stop is
// called.
func startSimulatedVolumes(cfg *rest.Config, log io.Writer) (stop func(), err error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(cs, 0)
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	p := &volumeProvisioner{cs: cs, claims: claims.Lister(), volumes: volumes.Lister(), queue: queue, log: log}
	onClaim := func(o any) {
		if pvc, ok := o.(*corev1.PersistentVolumeClaim); ok && p.wantsVolume(pvc) {
			queue.Add("claim/" + pvc.Namespace + "/" + pvc.Name)
		}
	}
	onVolume := func(o any) {
		if pv, ok := o.(*corev1.PersistentVolume); ok && p.released(pv) {
			queue.Add("volume/" + pv.Name)
		}
	}
	if _, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onClaim, UpdateFunc: func(_, o any) { onClaim(o) }}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := volumes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onVolume, UpdateFunc: func(_, o any) { onVolume(o) }}); err != nil {
		cancel()
		return nil, err
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for range volumeWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p.next(ctx) {
			}
		}()
	}
	return func() {
		cancel()
		queue.ShutDown()
		wg.Wait()
		factory.Shutdown()
	}, nil
}

type volumeProvisioner struct {
	cs      kubernetes.Interface
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	queue   workqueue.TypedRateLimitingInterface[string]
	log     io.Writer
}

func (p *volumeProvisioner) wantsVolume(pvc *corev1.PersistentVolumeClaim) bool {
	return ptr.Deref(pvc.Spec.StorageClassName, "") == StorageClass && pvc.Spec.VolumeName == "" && pvc.DeletionTimestamp == nil
}

func (p *volumeProvisioner) released(pv *corev1.PersistentVolume) bool {
	return pv.Annotations[provisionedByAnnotation] == SimulatedVolumeProvisioner &&
		(pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed) && pv.DeletionTimestamp == nil
}

// next handles one queued claim or volume; false once the queue is shut down.
func (p *volumeProvisioner) next(ctx context.Context) bool {
	key, shutdown := p.queue.Get()
	if shutdown {
		return false
	}
	defer p.queue.Done(key)
	if err := p.handle(ctx, key); err != nil && ctx.Err() == nil {
		fmt.Fprintf(p.log, "simulated volumes: %s: %v\n", key, err)
		p.queue.AddRateLimited(key)
		return true
	}
	p.queue.Forget(key)
	return true
}

func (p *volumeProvisioner) handle(ctx context.Context, key string) error {
	kind, rest, _ := strings.Cut(key, "/")
	if kind == "volume" {
		pv, err := p.volumes.Get(rest)
		if apierrors.IsNotFound(err) || (err == nil && !p.released(pv)) {
			return nil
		}
		if err != nil {
			return err
		}
		err = p.cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pv.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	namespace, name, _ := strings.Cut(rest, "/")
	pvc, err := p.claims.PersistentVolumeClaims(namespace).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !p.wantsVolume(pvc)) {
		return nil
	}
	if err != nil {
		return err
	}
	// Named after the claim's UID, so a claim queued twice gets one volume.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "pvc-" + string(pvc.UID),
			Annotations: map[string]string{provisionedByAnnotation: SimulatedVolumeProvisioner},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			VolumeMode:                    pvc.Spec.VolumeMode,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              StorageClass,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			// Backed by nothing, and only for simulated nodes: no kubelet
			// ever mounts it (a real node's claims use its own class).
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/simulated/" + string(pvc.UID)}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: simulatedNodeLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"kwok"}}},
			}}}},
		},
	}
	if _, err := p.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return p.bind(ctx, pvc, pv.Name)
}

// bind binds the claim and its volume the way the controller-manager's
// volume binder would (which then finds nothing to do): the binder works
// through claims one at a time and, with the API server loaded by a
// starting fleet, bound fewer than two a second.
func (p *volumeProvisioner) bind(ctx context.Context, pvc *corev1.PersistentVolumeClaim, volume string) error {
	core := p.cs.CoreV1()
	claim := pvc.DeepCopy()
	if claim.Annotations == nil {
		claim.Annotations = map[string]string{}
	}
	claim.Annotations["pv.kubernetes.io/bind-completed"] = "yes"
	claim.Annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
	claim.Spec.VolumeName = volume
	claim, err := core.PersistentVolumeClaims(pvc.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	claim.Status.Phase = corev1.ClaimBound
	claim.Status.AccessModes = claim.Spec.AccessModes
	claim.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]}
	if _, err := core.PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{}); err != nil {
		return err
	}
	pv, err := core.PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if pv.Status.Phase == corev1.VolumeBound {
		return nil
	}
	pv.Status.Phase = corev1.VolumeBound
	_, err = core.PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{})
	return err
}
