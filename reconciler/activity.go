package reconciler

import (
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// record appends an activity entry (keeping the last ActivityLogSize) and
// emits the same transition as a Kubernetes Event.
func (r *StoreReconciler) record(sc *scope, event, message string) {
	s := sc.store
	s.Status.ActivityLog = appendActivity(s.Status.ActivityLog, v1alpha1.ActivityEntry{
		Timestamp: metav1.Now(), Event: event, Message: truncate(message, 1024), Seq: v1alpha1.LastSeq(s.Status.ActivityLog) + 1,
	})
	if r.Recorder != nil {
		kind := "Normal"
		if event == v1alpha1.EventFailed || event == v1alpha1.EventDriftDetected {
			kind = "Warning"
		}
		r.Recorder.Eventf(s, kind, event, "%s", message)
	}
}

// publish hands the entries whose sequence number is above after to the
// event publisher.
func (r *StoreReconciler) publish(s *v1alpha1.Store, after int64) {
	if r.Events == nil {
		return
	}
	var events []v1alpha1.StoreEvent
	for _, e := range s.Status.ActivityLog {
		if e.Seq > after {
			events = append(events, v1alpha1.EventOf(s, e))
		}
	}
	if len(events) > 0 {
		r.Events.Publish(events...)
	}
}

// appendActivity appends to the ring, dropping the oldest entries beyond
// ActivityLogSize.
func appendActivity(log []v1alpha1.ActivityEntry, e v1alpha1.ActivityEntry) []v1alpha1.ActivityEntry {
	log = append(log, e)
	if over := len(log) - v1alpha1.ActivityLogSize; over > 0 {
		log = append([]v1alpha1.ActivityEntry(nil), log[over:]...)
	}
	return log
}

// truncate shortens s to at most n bytes, ending in "..." when it cuts. It
// cuts on a rune boundary, so the result stays valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
