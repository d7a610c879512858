package reconciler

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

func TestAppendActivityKeepsTheLast15InOrder(t *testing.T) {
	var log []v1alpha1.ActivityEntry
	for i := 0; i < 20; i++ {
		log = appendActivity(log, v1alpha1.ActivityEntry{Event: fmt.Sprint(i)})
	}
	if len(log) != v1alpha1.ActivityLogSize {
		t.Fatalf("len %d", len(log))
	}
	if log[0].Event != "5" || log[14].Event != "19" {
		t.Fatalf("kept %s..%s, want 5..19", log[0].Event, log[14].Event)
	}
}

func TestDifferences(t *testing.T) {
	cases := []struct {
		name    string
		desired map[string]any
		live    map[string]any
		want    int
	}{
		{name: "defaults in live are not drift",
			desired: map[string]any{"spec": map[string]any{"replicas": int64(1)}},
			live:    map[string]any{"spec": map[string]any{"replicas": float64(1), "revisionHistoryLimit": int64(10)}}, want: 0},
		{name: "replicas changed",
			desired: map[string]any{"spec": map[string]any{"replicas": int64(1)}},
			live:    map[string]any{"spec": map[string]any{"replicas": int64(0)}}, want: 1},
		{name: "label removed",
			desired: map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "b"}}},
			live:    map[string]any{"metadata": map[string]any{"labels": map[string]any{}}}, want: 1},
		{name: "extra label is not drift",
			desired: map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "b"}}},
			live:    map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "b", "c": "d"}}}, want: 0},
		{name: "list element edited",
			desired: map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"port": 80}}}},
			live:    map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"port": 81, "protocol": "TCP"}}}}, want: 1},
		{name: "status ignored",
			desired: map[string]any{"status": map[string]any{"x": 1}},
			live:    map[string]any{}, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := differences(tc.desired, tc.live); len(got) != tc.want {
				t.Fatalf("differences = %v, want %d", got, tc.want)
			}
		})
	}
}

func cond(t string, status metav1.ConditionStatus) metav1.Condition {
	return metav1.Condition{Type: t, Status: status, Reason: "R", Message: t + " message"}
}

func TestSetReadinessAndPhase(t *testing.T) {
	allTrue := func() []metav1.Condition {
		var cs []metav1.Condition
		for _, st := range stepConditions {
			cs = append(cs, cond(st.condition, metav1.ConditionTrue))
		}
		return cs
	}
	cases := []struct {
		name      string
		conds     []metav1.Condition
		engine    v1alpha1.Engine
		stalled   bool
		wantPhase v1alpha1.Phase
		wantReady metav1.ConditionStatus
		wantMsg   string
	}{
		{name: "all steps true", conds: allTrue(), wantPhase: v1alpha1.PhaseReady, wantReady: metav1.ConditionTrue},
		{name: "nothing yet", wantPhase: v1alpha1.PhasePending, wantReady: metav1.ConditionFalse, wantMsg: "waiting for NamespaceReady"},
		{name: "backend failing", conds: func() []metav1.Condition {
			cs := allTrue()
			cs[3] = cond(v1alpha1.BackendReadyCondition, metav1.ConditionFalse)
			return cs
		}(), wantPhase: v1alpha1.PhaseProvisioning, wantReady: metav1.ConditionFalse, wantMsg: "BackendReady: BackendReady message"},
		{name: "stalled", conds: []metav1.Condition{cond(v1alpha1.NamespaceReadyCondition, metav1.ConditionFalse), {
			Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonRetryLimitReached, Message: "3 attempts failed"}},
			stalled: true, wantPhase: v1alpha1.PhaseFailed, wantReady: metav1.ConditionFalse, wantMsg: "3 attempts failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &v1alpha1.Store{Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa}}
			s.Status.Conditions = tc.conds
			setReadiness(s, tc.stalled, nil)
			if got := phaseOf(s); got != tc.wantPhase {
				t.Errorf("phase %s, want %s", got, tc.wantPhase)
			}
			var ready *metav1.Condition
			for i := range s.Status.Conditions {
				if s.Status.Conditions[i].Type == v1alpha1.ReadyCondition {
					ready = &s.Status.Conditions[i]
				}
			}
			if ready == nil || ready.Status != tc.wantReady || (tc.wantMsg != "" && ready.Message != tc.wantMsg) {
				t.Errorf("Ready = %+v, want %s %q", ready, tc.wantReady, tc.wantMsg)
			}
		})
	}
}

func TestChartValuesAndDigest(t *testing.T) {
	p := Platform{Domain: "shops.test", EnvironmentValues: map[string]any{
		"database": map[string]any{"storageClass": "fast"},
		"store":    map[string]any{"domain": "ignored.test"},
	}}
	s := &v1alpha1.Store{Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "bob", Plan: v1alpha1.PlanMedium,
		Values: &v1alpha1.StoreValues{BackendReplicas: ptr.To[int32](4)}}}
	s.Name = "shop"
	vals := ChartValues(s, p)
	if got := nested(vals, "database", "storageClass"); got != "fast" {
		t.Errorf("environment value lost: %v", got)
	}
	if got := nested(vals, "store", "domain"); got != "shops.test" {
		t.Errorf("domain %v, want the platform default", got)
	}
	if got := nested(vals, "backend", "replicas"); got != int64(4) {
		t.Errorf("backend replicas %v, want the override 4", got)
	}
	if got := nested(vals, "storefront", "replicas"); got != int64(2) {
		t.Errorf("storefront replicas %v, want medium's 2", got)
	}
	if got := nested(vals, "credentials", "existingSecret"); got != CredentialsSecret {
		t.Errorf("credentials %v", got)
	}
	if nested(p.EnvironmentValues, "store", "name") != nil {
		t.Errorf("ChartValues mutated the platform's values")
	}
	if valuesDigest("", vals) != valuesDigest("", ChartValues(s, p)) {
		t.Errorf("digest not stable")
	}
	s.Spec.Plan = v1alpha1.PlanLarge
	if valuesDigest("", vals) == valuesDigest("", ChartValues(s, p)) {
		t.Errorf("digest did not change with the plan")
	}
}
