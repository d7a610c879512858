package openapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// EveryoneGroup in a PlanPolicy stands for every authenticated user.
const EveryoneGroup = "*"

// PlanPolicy maps groups to the plans their members may pick; a user may pick
// the plans of every group they are in, and those of EveryoneGroup. A nil
// policy lets everyone pick every plan.
type PlanPolicy map[string][]v1alpha1.Plan

// ParsePlanPolicy reads "group=plan,plan;group=plan" (e.g.
// "*=small;pro=small,medium"). An empty string is no policy.
func ParsePlanPolicy(s string) (PlanPolicy, error) {
	var out PlanPolicy
	for _, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		group, list, ok := strings.Cut(entry, "=")
		group = strings.TrimSpace(group)
		if !ok || group == "" {
			return nil, fmt.Errorf("%q is not group=plan,plan", entry)
		}
		var plans []v1alpha1.Plan
		for _, name := range strings.Split(list, ",") {
			p := v1alpha1.Plan(strings.TrimSpace(name))
			if p == "" {
				continue
			}
			if !slices.Contains(v1alpha1.Plans, p) {
				return nil, fmt.Errorf("group %q: unknown plan %q (plans: %s)", group, p, joinPlans(v1alpha1.Plans))
			}
			plans = append(plans, p)
		}
		if len(plans) == 0 {
			return nil, fmt.Errorf("group %q lists no plan", group)
		}
		if out == nil {
			out = PlanPolicy{}
		}
		out[group] = append(out[group], plans...)
	}
	return out, nil
}

// Allowed is the plans id may pick, in the order of v1alpha1.Plans.
func (p PlanPolicy) Allowed(id Identity) []v1alpha1.Plan {
	if p == nil {
		return v1alpha1.Plans
	}
	var out []v1alpha1.Plan
	for _, plan := range v1alpha1.Plans {
		for group, plans := range p {
			if (group == EveryoneGroup || slices.Contains(id.Groups, group)) && slices.Contains(plans, plan) {
				out = append(out, plan)
				break
			}
		}
	}
	return out
}

// refusal says why id may not pick plan, naming the plans it may; empty
// when it may.
func (p PlanPolicy) refusal(id Identity, plan v1alpha1.Plan) string {
	allowed := p.Allowed(id)
	if slices.Contains(allowed, plan) {
		return ""
	}
	may := "you may pick: " + joinPlans(allowed)
	if len(allowed) == 0 {
		may = "no plan is open to your groups; ask the platform team"
	}
	return fmt.Sprintf("plan %q is not available to you; %s", plan, may)
}

func joinPlans(plans []v1alpha1.Plan) string {
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}
