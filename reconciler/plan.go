package reconciler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// componentSize is the resources and replicas of one chart component.
type componentSize struct {
	Replicas int32
	Requests corev1.ResourceList
	Limits   corev1.ResourceList
}

// planSize is everything a plan decides: the namespace quota, the container
// defaults of the LimitRange, and each component's size. The quota holds a
// whole chart upgrade: every component, one surge pod of each Deployment
// rolling at once, and the release's migration Job (sized as the backend),
// which the new Medusa pods wait for. Less, and an upgrade (a drift repair
// is one) deadlocks: the Job's pod is refused while the old pods hold the
// quota (TestPlanQuotaHoldsAnUpgrade).
type planSize struct {
	Quota           corev1.ResourceList
	DefaultRequests corev1.ResourceList
	DefaultLimits   corev1.ResourceList
	DatabaseStorage resource.Quantity
	Database        componentSize
	Backend         componentSize
	Worker          componentSize
	Storefront      componentSize
}

func rl(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
}

func size(replicas int32, reqCPU, reqMem, limCPU, limMem string) componentSize {
	return componentSize{Replicas: replicas, Requests: rl(reqCPU, reqMem), Limits: rl(limCPU, limMem)}
}

// plans sizes each plan.
var plans = map[v1alpha1.Plan]planSize{
	v1alpha1.PlanSmall: {
		Quota: corev1.ResourceList{
			corev1.ResourceRequestsCPU: resource.MustParse("1"), corev1.ResourceRequestsMemory: resource.MustParse("3Gi"),
			corev1.ResourceLimitsCPU: resource.MustParse("8"), corev1.ResourceLimitsMemory: resource.MustParse("8Gi"),
			corev1.ResourcePods: resource.MustParse("12"), corev1.ResourcePersistentVolumeClaims: resource.MustParse("2"),
			corev1.ResourceRequestsStorage: resource.MustParse("20Gi"),
		},
		DefaultRequests: rl("50m", "64Mi"),
		DefaultLimits:   rl("250m", "256Mi"),
		DatabaseStorage: resource.MustParse("5Gi"),
		Database:        size(1, "100m", "256Mi", "500m", "512Mi"),
		// Measured on the real node at rest: the Medusa server ≈ 460 MB, the
		// worker ≈ 360 MB (410–460 and 330–360 MB measured; test/store logs
		// each container's). A full CPU as the limit:
		// Medusa's start is CPU-bound (loading its modules), 500m doubles it.
		Backend:    size(1, "100m", "512Mi", "1", "1Gi"),
		Worker:     size(1, "100m", "384Mi", "1", "1Gi"),
		Storefront: size(1, "100m", "128Mi", "500m", "512Mi"),
	},
	v1alpha1.PlanMedium: {
		Quota: corev1.ResourceList{
			corev1.ResourceRequestsCPU: resource.MustParse("3"), corev1.ResourceRequestsMemory: resource.MustParse("6Gi"),
			corev1.ResourceLimitsCPU: resource.MustParse("12"), corev1.ResourceLimitsMemory: resource.MustParse("16Gi"),
			corev1.ResourcePods: resource.MustParse("24"), corev1.ResourcePersistentVolumeClaims: resource.MustParse("2"),
			corev1.ResourceRequestsStorage: resource.MustParse("60Gi"),
		},
		DefaultRequests: rl("100m", "128Mi"),
		DefaultLimits:   rl("500m", "512Mi"),
		DatabaseStorage: resource.MustParse("20Gi"),
		Database:        size(1, "250m", "512Mi", "1", "1Gi"),
		Backend:         size(2, "250m", "512Mi", "1", "1536Mi"),
		Worker:          size(1, "250m", "512Mi", "1", "1536Mi"),
		Storefront:      size(2, "200m", "256Mi", "1", "768Mi"),
	},
	v1alpha1.PlanLarge: {
		Quota: corev1.ResourceList{
			corev1.ResourceRequestsCPU: resource.MustParse("8"), corev1.ResourceRequestsMemory: resource.MustParse("16Gi"),
			corev1.ResourceLimitsCPU: resource.MustParse("24"), corev1.ResourceLimitsMemory: resource.MustParse("40Gi"),
			corev1.ResourcePods: resource.MustParse("48"), corev1.ResourcePersistentVolumeClaims: resource.MustParse("2"),
			corev1.ResourceRequestsStorage: resource.MustParse("200Gi"),
		},
		DefaultRequests: rl("100m", "128Mi"),
		DefaultLimits:   rl("1", "1Gi"),
		DatabaseStorage: resource.MustParse("100Gi"),
		Database:        size(1, "1", "2Gi", "2", "4Gi"),
		Backend:         size(3, "500m", "1Gi", "2", "2Gi"),
		Worker:          size(2, "500m", "1Gi", "2", "2Gi"),
		Storefront:      size(3, "250m", "512Mi", "1", "1Gi"),
	},
}

// planFor returns the sizing of a store, with its restricted value overrides
// applied. An unknown plan (the CRD's enum makes it impossible) falls back to small.
func planFor(s *v1alpha1.Store) planSize {
	p, ok := plans[s.Spec.Plan]
	if !ok {
		p = plans[v1alpha1.PlanSmall]
	}
	if v := s.Spec.Values; v != nil {
		if v.BackendReplicas != nil {
			p.Backend.Replicas = *v.BackendReplicas
		}
		if v.StorefrontReplicas != nil {
			p.Storefront.Replicas = *v.StorefrontReplicas
		}
		if v.DatabaseStorage != nil {
			p.DatabaseStorage = *v.DatabaseStorage
		}
	}
	return p
}
