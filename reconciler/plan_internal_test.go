package reconciler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestPlanQuotaHoldsAnUpgrade: during a chart upgrade every component runs,
// each Deployment adds one surge pod (maxSurge 25%, rounded up), and the
// migration Job (the backend's size) runs before the new Medusa pods start.
// All of it must fit the plan's quota, or the upgrade deadlocks on a real
// node: found by test/store when a drift repair upgraded a real store.
func TestPlanQuotaHoldsAnUpgrade(t *testing.T) {
	// The chart's own Redis (values.yaml), not sized by the plan.
	redis := size(1, "20m", "32Mi", "200m", "128Mi")
	for name, p := range plans {
		var reqCPU, reqMem, limCPU, limMem resource.Quantity
		add := func(c componentSize, pods int32) {
			for range pods {
				reqCPU.Add(c.Requests[corev1.ResourceCPU])
				reqMem.Add(c.Requests[corev1.ResourceMemory])
				limCPU.Add(c.Limits[corev1.ResourceCPU])
				limMem.Add(c.Limits[corev1.ResourceMemory])
			}
		}
		add(p.Database, p.Database.Replicas)
		add(redis, 1+1)
		for _, c := range []componentSize{p.Backend, p.Worker, p.Storefront} {
			add(c, c.Replicas+(c.Replicas+3)/4)
		}
		add(p.Backend, 1) // the migration Job
		for _, c := range []struct {
			res  corev1.ResourceName
			need resource.Quantity
		}{
			{corev1.ResourceRequestsCPU, reqCPU}, {corev1.ResourceRequestsMemory, reqMem},
			{corev1.ResourceLimitsCPU, limCPU}, {corev1.ResourceLimitsMemory, limMem},
		} {
			if have := p.Quota[c.res]; have.Cmp(c.need) < 0 {
				t.Errorf("plan %s: quota %s %s, an upgrade needs %s", name, c.res, have.String(), c.need.String())
			}
		}
	}
}
