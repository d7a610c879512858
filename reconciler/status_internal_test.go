package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

func TestTruncateCutsOnARuneBoundary(t *testing.T) {
	cases := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{name: "short enough", in: "drift", n: 10, want: "drift"},
		{name: "exactly n bytes", in: "0123456789", n: 10, want: "0123456789"},
		{name: "ASCII", in: "0123456789ab", n: 10, want: "0123456..."},
		{name: "two-byte rune across the cut", in: "012345é789ab", n: 10, want: "012345..."},
		{name: "three-byte rune across the cut", in: "01234€6789ab", n: 10, want: "01234..."},
		{name: "four-byte rune across the cut", in: "0123😀6789ab", n: 10, want: "0123..."},
		{name: "rune ends at the cut", in: "01234é789ab", n: 10, want: "01234é..."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := truncate(tc.in, tc.n)
			if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
				t.Fatalf("truncate(%q, %d) = %q (%d bytes), want %q", tc.in, tc.n, got, len(got), tc.want)
			}
		})
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
		{name: "numbers compare by value, not by Go type",
			desired: map[string]any{"spec": map[string]any{"port": 80, "weight": float64(0.5), "n": json.Number("3")}},
			live:    map[string]any{"spec": map[string]any{"port": int64(80), "weight": float64(0.5), "n": int32(3)}}, want: 0},
		{name: "a number is not its string",
			desired: map[string]any{"spec": map[string]any{"port": int64(80)}},
			live:    map[string]any{"spec": map[string]any{"port": "80"}}, want: 1},
		{name: "a map where a value was",
			desired: map[string]any{"spec": map[string]any{"x": "a"}},
			live:    map[string]any{"spec": map[string]any{"x": map[string]any{"a": "b"}}}, want: 1},
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

// TestSummarize covers every case summarize decides Ready, Reconciling,
// Stalled and the phase for: ready, waiting, failed, retried, deleting,
// suspended and ComingSoon stores.
func TestSummarize(t *testing.T) {
	allTrue := func(extra ...metav1.Condition) []metav1.Condition {
		var cs []metav1.Condition
		for _, st := range stepConditions {
			cs = append(cs, cond(st.condition, metav1.ConditionTrue))
		}
		return append(cs, extra...)
	}
	with := func(cs []metav1.Condition, c metav1.Condition) []metav1.Condition {
		for i := range cs {
			if cs[i].Type == c.Type {
				cs[i] = c
				return cs
			}
		}
		return append(cs, c)
	}
	stalledCond := metav1.Condition{Type: v1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonRetryLimitReached, Message: "3 attempts failed"}
	reconciling := metav1.Condition{Type: v1alpha1.ReconcilingCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonProgressing, Message: "provisioning"}
	readyTrue := metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSucceeded, Message: "store is ready"}
	cases := []struct {
		name string
		// The store: its conditions, deletion, spec.suspend and engine.
		conds    []metav1.Condition
		deleting bool
		suspend  bool
		engine   v1alpha1.Engine
		// The status as the reconcile read it.
		beforePhase v1alpha1.Phase
		beforeConds []metav1.Condition
		// What the steps recorded in the scope, and the reconcile's error.
		waiting *cause
		stalled bool
		stall   *cause
		retried bool
		err     error

		wantPhase       v1alpha1.Phase
		wantReady       metav1.ConditionStatus
		wantReason      string
		wantMsg         string
		wantReconciling metav1.ConditionStatus // "" for no Reconciling condition
		wantStalled     bool
		wantEvents      []string
	}{
		{name: "ready: every step true", conds: allTrue(reconciling), beforeConds: allTrue(),
			wantPhase: v1alpha1.PhaseReady, wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonSucceeded,
			wantEvents: []string{v1alpha1.EventReady}},
		{name: "waiting: nothing yet",
			wantPhase: v1alpha1.PhasePending, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonProgressing, wantMsg: "waiting for NamespaceReady",
			wantReconciling: metav1.ConditionTrue},
		{name: "waiting: backend not ready", conds: with(allTrue(), cond(v1alpha1.BackendReadyCondition, metav1.ConditionFalse)), beforeConds: allTrue(),
			wantPhase: v1alpha1.PhaseProvisioning, wantReady: metav1.ConditionFalse, wantReason: "R", wantMsg: "BackendReady: BackendReady message",
			wantReconciling: metav1.ConditionTrue},
		{name: "waiting: a transient error explains Ready", conds: []metav1.Condition{cond(v1alpha1.NamespaceReadyCondition, metav1.ConditionFalse)}, err: errors.New("apply namespace: connection refused"),
			wantPhase: v1alpha1.PhaseProvisioning, wantReady: metav1.ConditionFalse, wantReason: "R", wantMsg: "apply namespace: connection refused",
			wantReconciling: metav1.ConditionTrue},
		{name: "failed: the retry limit reached in this reconcile", conds: []metav1.Condition{cond(v1alpha1.NamespaceReadyCondition, metav1.ConditionFalse), reconciling},
			stalled: true, stall: &cause{reason: v1alpha1.ReasonRetryLimitReached, message: "3 attempts failed; last error: boom"},
			wantPhase: v1alpha1.PhaseFailed, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonRetryLimitReached, wantMsg: "3 attempts failed; last error: boom",
			wantStalled: true, wantEvents: []string{v1alpha1.EventFailed}},
		{name: "failed: an invalid spec stalls at once", conds: []metav1.Condition{cond(v1alpha1.NamespaceReadyCondition, metav1.ConditionFalse)},
			stalled: true, stall: &cause{reason: v1alpha1.ReasonInvalidSpec, message: "namespace store-s exists and is not managed by storefleet"},
			wantPhase: v1alpha1.PhaseFailed, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonInvalidSpec, wantMsg: "namespace store-s exists and is not managed by storefleet",
			wantStalled: true, wantEvents: []string{v1alpha1.EventFailed}},
		{name: "failed: a Failed store stays Failed", conds: []metav1.Condition{cond(v1alpha1.NamespaceReadyCondition, metav1.ConditionFalse), stalledCond},
			beforePhase: v1alpha1.PhaseFailed, stalled: true,
			wantPhase: v1alpha1.PhaseFailed, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonRetryLimitReached, wantMsg: "3 attempts failed",
			wantStalled: true},
		{name: "retried: the stall ends and provisioning resumes", conds: []metav1.Condition{cond(v1alpha1.NamespaceReadyCondition, metav1.ConditionFalse), stalledCond},
			beforePhase: v1alpha1.PhaseFailed, retried: true,
			wantPhase: v1alpha1.PhaseProvisioning, wantReady: metav1.ConditionFalse, wantReason: "R", wantMsg: "NamespaceReady: NamespaceReady message",
			wantReconciling: metav1.ConditionTrue},
		{name: "retried: and failed again at once", conds: []metav1.Condition{cond(v1alpha1.NamespaceReadyCondition, metav1.ConditionFalse), stalledCond},
			beforePhase: v1alpha1.PhaseFailed, retried: true, stalled: true, stall: &cause{reason: v1alpha1.ReasonInvalidSpec, message: "still invalid"},
			wantPhase: v1alpha1.PhaseFailed, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonInvalidSpec, wantMsg: "still invalid",
			wantStalled: true},
		{name: "deleting: Ready says what the deletion waits for", conds: allTrue(readyTrue, reconciling, stalledCond), deleting: true, beforePhase: v1alpha1.PhaseReady, beforeConds: allTrue(),
			waiting:   &cause{reason: v1alpha1.ReasonDeleting, message: "waiting for namespace store-s to be deleted"},
			wantPhase: v1alpha1.PhaseDeleting, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonDeleting, wantMsg: "waiting for namespace store-s to be deleted"},
		{name: "deleting: no wait recorded leaves Ready", conds: allTrue(readyTrue), deleting: true, beforePhase: v1alpha1.PhaseReady, beforeConds: allTrue(), err: errors.New("list volumes: timeout"),
			wantPhase: v1alpha1.PhaseDeleting, wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonSucceeded, wantMsg: "store is ready"},
		{name: "suspended: the conditions stay, nothing reconciles", conds: allTrue(readyTrue, reconciling), suspend: true, beforePhase: v1alpha1.PhaseReady, beforeConds: allTrue(),
			wantPhase: v1alpha1.PhaseReady, wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonSucceeded, wantMsg: "store is ready",
			wantEvents: []string{v1alpha1.EventSuspended}},
		{name: "suspended: a Failed store stays Failed", conds: []metav1.Condition{stalledCond, {Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonRetryLimitReached, Message: "3 attempts failed"}},
			suspend: true, beforePhase: v1alpha1.PhaseFailed,
			wantPhase: v1alpha1.PhaseFailed, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonRetryLimitReached, wantMsg: "3 attempts failed",
			wantStalled: true, wantEvents: []string{v1alpha1.EventSuspended}},
		{name: "ComingSoon: recorded, not provisioned", engine: v1alpha1.EngineWooCommerce,
			waiting:   &cause{reason: v1alpha1.ReasonEngineComingSoon, message: "the woocommerce engine is coming soon"},
			wantPhase: v1alpha1.PhaseComingSoon, wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonEngineComingSoon, wantMsg: "the woocommerce engine is coming soon"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Suspend: tc.suspend}}
			if tc.engine != "" {
				s.Spec.Engine = tc.engine
			}
			if tc.deleting {
				s.DeletionTimestamp = ptr.To(metav1.Now())
			}
			s.Status.Conditions = append([]metav1.Condition(nil), tc.conds...)
			sc := &scope{store: s, before: v1alpha1.StoreStatus{Phase: tc.beforePhase, Conditions: tc.beforeConds},
				waiting: tc.waiting, stalled: tc.stalled, stall: tc.stall, retried: tc.retried}
			(&StoreReconciler{}).summarize(sc, tc.err)

			if s.Status.Phase != tc.wantPhase {
				t.Errorf("phase %s, want %s", s.Status.Phase, tc.wantPhase)
			}
			ready := conditionOf(s, v1alpha1.ReadyCondition)
			if ready == nil || ready.Status != tc.wantReady || ready.Reason != tc.wantReason || (tc.wantMsg != "" && ready.Message != tc.wantMsg) {
				t.Errorf("Ready = %+v, want %s %s %q", ready, tc.wantReady, tc.wantReason, tc.wantMsg)
			}
			var reconcilingStatus metav1.ConditionStatus
			if c := conditionOf(s, v1alpha1.ReconcilingCondition); c != nil {
				reconcilingStatus = c.Status
			}
			if reconcilingStatus != tc.wantReconciling {
				t.Errorf("Reconciling %q, want %q", reconcilingStatus, tc.wantReconciling)
			}
			if stalled := conditionOf(s, v1alpha1.StalledCondition); (stalled != nil) != tc.wantStalled {
				t.Errorf("Stalled = %+v, want present %v", stalled, tc.wantStalled)
			}
			var events []string
			for _, e := range s.Status.ActivityLog {
				events = append(events, e.Event)
			}
			if !slices.Equal(events, tc.wantEvents) {
				t.Errorf("activity %v, want %v", events, tc.wantEvents)
			}
		})
	}
}

func conditionOf(s *v1alpha1.Store, t string) *metav1.Condition {
	for i := range s.Status.Conditions {
		if s.Status.Conditions[i].Type == t {
			return &s.Status.Conditions[i]
		}
	}
	return nil
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

func TestURLsOf(t *testing.T) {
	local := Platform{Domain: "localtest.me"}
	tls := Platform{Domain: "stores.example.com", EnvironmentValues: map[string]any{"ingress": map[string]any{"tls": map[string]any{"enabled": true}}}}
	cases := []struct {
		name     string
		engine   v1alpha1.Engine
		domain   string
		platform Platform
		want     *v1alpha1.StoreURLs
	}{
		{name: "platform domain over HTTP", engine: v1alpha1.EngineMedusa, platform: local,
			want: &v1alpha1.StoreURLs{Storefront: "http://shop.localtest.me", Admin: "http://shop.localtest.me/app"}},
		{name: "TLS environment", engine: v1alpha1.EngineMedusa, platform: tls,
			want: &v1alpha1.StoreURLs{Storefront: "https://shop.stores.example.com", Admin: "https://shop.stores.example.com/app"}},
		{name: "the store's own domain", engine: v1alpha1.EngineMedusa, domain: "shops.test", platform: local,
			want: &v1alpha1.StoreURLs{Storefront: "http://shop.shops.test", Admin: "http://shop.shops.test/app"}},
		{name: "an engine that is not provisioned has none", engine: v1alpha1.EngineWooCommerce, platform: local},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.StoreSpec{Engine: tc.engine, Domain: tc.domain}}
			got := urlsOf(s, tc.platform)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("urlsOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHostProblem(t *testing.T) {
	p := Platform{Domain: "localtest.me"}
	two := Platform{Domain: "localtest.me", AllowedDomains: []string{"localtest.me", "shops.example.com"}}
	for _, tc := range []struct {
		name     string
		platform Platform
		store    string
		domain   string
		wantErr  string
	}{
		{name: "default domain", platform: p, store: "acme"},
		{name: "the platform domain", platform: p, store: "acme", domain: "localtest.me"},
		{name: "another service's domain", platform: p, store: "grafana", domain: "example.com", wantErr: `spec.domain: domain "example.com" is not one of the platform's domains (localtest.me); use one of them or leave it empty for localtest.me`},
		{name: "second allowed domain", platform: two, store: "acme", domain: "shops.example.com"},
		{name: "not on a longer list", platform: two, store: "acme", domain: "example.org", wantErr: "(localtest.me, shops.example.com)"},
		{name: "default domain too long for DNS", platform: Platform{Domain: strings.Repeat("d", 250)}, store: "acme", wantErr: "DNS allows 253"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: tc.store}, Spec: v1alpha1.StoreSpec{Domain: tc.domain}}
			err := hostProblem(s, tc.platform)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("hostProblem = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestStoreURLsCarryTheIngressPort(t *testing.T) {
	s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa}}
	cases := []struct {
		values map[string]any
		want   string
	}{
		{nil, "http://shop.localhost"},
		{map[string]any{"ingress": map[string]any{"port": 80}}, "http://shop.localhost"},
		{map[string]any{"ingress": map[string]any{"port": 8081}}, "http://shop.localhost:8081"},
		{map[string]any{"ingress": map[string]any{"port": float64(443), "tls": map[string]any{"enabled": true}}}, "https://shop.localhost"},
		{map[string]any{"ingress": map[string]any{"port": 8443, "tls": map[string]any{"enabled": true}}}, "https://shop.localhost:8443"},
	}
	for _, c := range cases {
		u := urlsOf(s, Platform{Domain: "localhost", EnvironmentValues: c.values})
		if u.Storefront != c.want || u.Admin != c.want+"/app" {
			t.Errorf("values %v: urls %+v, want %s", c.values, u, c.want)
		}
	}
}

// A drift check that found nothing new is not worth a status write; any
// other change still is, and carries the check's time with it.
func TestStatusChangedIgnoresTheCheckTimeAlone(t *testing.T) {
	t1, t2 := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(200, 0))
	before := v1alpha1.StoreStatus{Phase: v1alpha1.PhaseReady, Drift: &v1alpha1.DriftStatus{LastChecked: &t1}}
	after := *before.DeepCopy()
	after.Drift.LastChecked = &t2
	if statusChanged(before, after) {
		t.Error("a new check time alone counted as a change")
	}
	if after.Drift.LastChecked != &t2 {
		t.Error("statusChanged modified its argument")
	}
	after.Drift.Corrections = 1
	if !statusChanged(before, after) {
		t.Error("a correction did not count as a change")
	}
	first := v1alpha1.StoreStatus{Phase: v1alpha1.PhaseReady}
	if !statusChanged(first, *before.DeepCopy()) {
		t.Error("the first check was not written")
	}
}
