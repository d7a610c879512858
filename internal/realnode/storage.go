package realnode

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// StorageClass provisions volumes that are directories on this machine,
	// for pods on the real node (kwok's "standard" class only binds fake PVs).
	StorageClass = "local"
	// Provisioner is the class's provisioner: startProvisioner below.
	Provisioner      = "storefleet.dev/local-volume"
	provisionedByKey = "pv.kubernetes.io/provisioned-by"
	// pathAnnotation records the directory behind a PV, for its removal.
	pathAnnotation = "storefleet.dev/local-path"
)

func schemaGVK(apiVersion, kind string) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(apiVersion, kind)
}

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }

func storageClass() client.Object {
	return typed(&storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: StorageClass},
		Provisioner:       Provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}, "StorageClass", "storage.k8s.io/v1")
}

// startProvisioner runs the local volume provisioner until stop is called:
// a claim of StorageClass gets a PV backed by a new directory under dir,
// pinned to the real node; a released PV's directory and object are removed
// (reclaim policy Delete). It polls once a second: a local cluster has few
// claims, and a poll needs no informer machinery.
func startProvisioner(cl client.Client, dir string, log io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if err := provisionOnce(ctx, cl, dir); err != nil && ctx.Err() == nil {
				fmt.Fprintf(log, "local volumes: %v\n", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return func() { cancel(); <-done }
}

func provisionOnce(ctx context.Context, cl client.Client, dir string) error {
	var claims corev1.PersistentVolumeClaimList
	if err := cl.List(ctx, &claims); err != nil {
		return err
	}
	for i := range claims.Items {
		pvc := &claims.Items[i]
		if ptr.Deref(pvc.Spec.StorageClassName, "") != StorageClass || pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil {
			continue
		}
		if err := provision(ctx, cl, dir, pvc); err != nil {
			return fmt.Errorf("provision %s/%s: %w", pvc.Namespace, pvc.Name, err)
		}
	}
	var pvs corev1.PersistentVolumeList
	if err := cl.List(ctx, &pvs); err != nil {
		return err
	}
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		if pv.Annotations[provisionedByKey] != Provisioner {
			continue
		}
		if pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed {
			continue
		}
		if path := pv.Annotations[pathAnnotation]; path != "" && filepath.Dir(path) == dir {
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove the data of %s: %w", pv.Name, err)
			}
		}
		if err := cl.Delete(ctx, pv); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func provision(ctx context.Context, cl client.Client, dir string, pvc *corev1.PersistentVolumeClaim) error {
	name := "pvc-" + string(pvc.UID)
	path := filepath.Join(dir, name)
	// Any uid may own its data: a pod's fsGroup does not apply to local
	// volumes, and the stores run as their images' own non-root users.
	if err := os.MkdirAll(path, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o777); err != nil {
		return err
	}
	size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{provisionedByKey: Provisioner, pathAnnotation: path},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              StorageClass,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{NodeName}}},
			}}}},
		},
	}
	if err := cl.Create(ctx, pv); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}
