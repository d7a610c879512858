package reconciler

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// summarize derives everything that summarises the step conditions: Ready,
// Reconciling, Stalled, the phase, the URLs, and the activity entries for the
// transitions of this reconcile. It runs once, before the status patch, and
// is the only code that writes Ready, Reconciling, Stalled and the phase:
// the steps record in the scope what they wait for or why they stall.
func (r *StoreReconciler) summarize(sc *scope, reconcileErr error) {
	s := sc.store
	setReadiness(s, sc, reconcileErr)
	s.Status.Phase = phaseOf(s)
	s.Status.URLs = urlsOf(s, r.Platform)
	s.Status.Source = v1alpha1.SourceOf(s)

	// Activity entries for the transitions, in step order.
	for _, st := range stepConditions {
		if conditions.IsTrue(s, st.condition) && !isTrueIn(sc.before.Conditions, st.condition) {
			r.record(sc, st.event, conditions.GetMessage(s, st.condition))
		}
	}
	if s.Status.Phase == v1alpha1.PhaseReady && sc.before.Phase != v1alpha1.PhaseReady {
		r.record(sc, v1alpha1.EventReady, fmt.Sprintf("store is ready at %s", s.Status.URLs.Storefront))
		if !hasEvent(sc.before.ActivityLog, v1alpha1.EventReady) {
			provisioningDuration.Observe(time.Since(s.CreationTimestamp.Time).Seconds())
		}
	}
	if s.Status.Phase == v1alpha1.PhaseFailed && sc.before.Phase != v1alpha1.PhaseFailed {
		provisioningFailures.Inc()
		r.record(sc, v1alpha1.EventFailed, conditions.GetMessage(s, v1alpha1.StalledCondition))
	}
	if s.Spec.Suspend && !hasLastEvent(sc.before.ActivityLog, v1alpha1.EventSuspended) {
		r.record(sc, v1alpha1.EventSuspended, "reconciliation suspended by spec.suspend")
	}
}

// setReadiness sets the kstatus conditions (Ready, Reconciling, Stalled)
// from what the steps recorded in sc and from the step conditions.
func setReadiness(s *v1alpha1.Store, sc *scope, reconcileErr error) {
	// A fresh round of attempts ends the last round's stall; a stall found
	// in this reconcile starts one.
	if sc.retried {
		conditions.Delete(s, v1alpha1.StalledCondition)
	}
	if sc.stall != nil {
		conditions.MarkStalled(s, sc.stall.reason, "%s", sc.stall.message)
	}
	switch {
	case !s.DeletionTimestamp.IsZero():
		// Ready says what the deletion waits for; nothing else applies.
		conditions.Delete(s, v1alpha1.ReconcilingCondition)
		conditions.Delete(s, v1alpha1.StalledCondition)
		markWaiting(s, sc)
		return
	case s.Spec.Suspend:
		// Left as the last reconcile saw it, but not reconciling.
		conditions.Delete(s, v1alpha1.ReconcilingCondition)
		return
	case s.Spec.Engine == v1alpha1.EngineWooCommerce:
		// Recorded, not provisioned: nothing is in progress.
		conditions.Delete(s, v1alpha1.ReconcilingCondition)
		markWaiting(s, sc)
		return
	case sc.unchecked:
		// Nothing was learnt about the store: a Ready store stays Ready
		// through an API server hiccup rather than flapping.
		return
	case sc.stalled:
		conditions.Delete(s, v1alpha1.ReconcilingCondition)
		conditions.MarkFalse(s, v1alpha1.ReadyCondition, conditions.GetReason(s, v1alpha1.StalledCondition), "%s", conditions.GetMessage(s, v1alpha1.StalledCondition))
		return
	}
	conditions.Delete(s, v1alpha1.StalledCondition)
	var notReady []string
	for _, st := range stepConditions {
		if !conditions.IsTrue(s, st.condition) {
			notReady = append(notReady, st.condition)
		}
	}
	if len(notReady) == 0 && reconcileErr == nil {
		conditions.Delete(s, v1alpha1.ReconcilingCondition)
		conditions.MarkTrue(s, v1alpha1.ReadyCondition, v1alpha1.ReasonSucceeded, "store is ready: namespace, release, database, backend and storefront are all ready")
		return
	}
	// The first condition that is not ready explains Ready, in its own words.
	reason, msg := v1alpha1.ReasonProgressing, "provisioning"
	if len(notReady) > 0 {
		if c := conditions.Get(s, notReady[0]); c != nil {
			reason, msg = c.Reason, notReady[0]+": "+c.Message
		} else {
			msg = "waiting for " + notReady[0]
		}
	}
	if reconcileErr != nil {
		msg = reconcileErr.Error()
	}
	conditions.MarkTrue(s, v1alpha1.ReconcilingCondition, reason, "%s", msg)
	conditions.MarkFalse(s, v1alpha1.ReadyCondition, reason, "%s", msg)
}

// markWaiting reports what a step recorded in sc.waiting as Ready=False; a
// step that recorded nothing leaves Ready as it was.
func markWaiting(s *v1alpha1.Store, sc *scope) {
	if sc.waiting != nil {
		conditions.MarkFalse(s, v1alpha1.ReadyCondition, sc.waiting.reason, "%s", sc.waiting.message)
	}
}

// phaseOf is the one-word summary of the conditions.
func phaseOf(s *v1alpha1.Store) v1alpha1.Phase {
	switch {
	case !s.DeletionTimestamp.IsZero():
		return v1alpha1.PhaseDeleting
	case s.Spec.Engine == v1alpha1.EngineWooCommerce:
		return v1alpha1.PhaseComingSoon
	case conditions.IsStalled(s):
		return v1alpha1.PhaseFailed
	case conditions.IsReady(s):
		return v1alpha1.PhaseReady
	case conditions.Has(s, v1alpha1.NamespaceReadyCondition):
		return v1alpha1.PhaseProvisioning
	default:
		return v1alpha1.PhasePending
	}
}

// urlsOf returns the store's addresses (set from the start, so a person can
// see where the store will answer).
func urlsOf(s *v1alpha1.Store, p Platform) *v1alpha1.StoreURLs {
	if s.Spec.Engine != v1alpha1.EngineMedusa {
		return nil
	}
	scheme := "http"
	if tls, _ := nested(p.EnvironmentValues, "ingress", "tls", "enabled").(bool); tls {
		scheme = "https"
	}
	host := s.Name + "." + storeDomain(s, p)
	// The chart's medusa-store.url makes the same URL from ingress.port.
	if port := portValue(nested(p.EnvironmentValues, "ingress", "port")); port != 0 &&
		!(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	base := scheme + "://" + host
	return &v1alpha1.StoreURLs{Storefront: base, Admin: base + "/app"}
}

// portValue reads a port from values (YAML gives int or float64).
func portValue(v any) int {
	switch p := v.(type) {
	case int:
		return p
	case int64:
		return int(p)
	case float64:
		return int(p)
	}
	return 0
}

func nested(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func isTrueIn(conds []metav1.Condition, t string) bool {
	for _, c := range conds {
		if c.Type == t {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func hasEvent(log []v1alpha1.ActivityEntry, event string) bool {
	for _, e := range log {
		if e.Event == event {
			return true
		}
	}
	return false
}

func hasLastEvent(log []v1alpha1.ActivityEntry, event string) bool {
	return len(log) > 0 && strings.EqualFold(log[len(log)-1].Event, event)
}
