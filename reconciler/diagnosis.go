package reconciler

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// failureReasons are container waiting reasons that mean a failure, not
// progress. ErrImageNeverPull is what a node says for an image it does not
// have under pull policy Never: on the local node, an image never built.
var failureReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "ErrImageNeverPull": true,
	"InvalidImageName": true, "CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// PodDiagnosis is the operator's reading of one pod's status: why it is not
// ready (nil when nothing in the status says), and whether that is a failure:
// a cause that will not clear by itself (a crash loop, an image that cannot be
// pulled, the kernel's OOM kill) or any cause that has lasted longer than
// startTimeout. Before that, a pod waiting for the scheduler or its volume is
// still starting. It reads only the pod, so it is the same on kwok's
// simulated statuses and a real kubelet's.
func PodDiagnosis(p *corev1.Pod, startTimeout time.Duration, now time.Time) (*v1alpha1.Diagnosis, bool) {
	if !p.DeletionTimestamp.IsZero() {
		return nil, false
	}
	object := "pod " + p.Name
	timedOut := p.CreationTimestamp.Add(startTimeout).Before(now)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return &v1alpha1.Diagnosis{Reason: orDefault(c.Reason, "Unschedulable"), Message: c.Message, Object: object}, timedOut
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if d := oomKilled(cs, object); d != nil {
			return d, true
		}
		if wt := cs.State.Waiting; wt != nil && failureReasons[wt.Reason] {
			return &v1alpha1.Diagnosis{Reason: wt.Reason, Message: strings.TrimSpace(wt.Reason + ": " + wt.Message + lastExit(cs)), Object: object}, true
		}
	}
	for _, cs := range statuses {
		if wt := cs.State.Waiting; wt != nil && !cs.Ready {
			d := &v1alpha1.Diagnosis{Reason: "Starting", Message: fmt.Sprintf("container %s waiting: %s", cs.Name, wt.Reason), Object: object}
			if wt.Message != "" {
				d.Message += ": " + wt.Message
			}
			if timedOut {
				d.Reason = "StartTimeout"
				d.Message += fmt.Sprintf(" (not started within %s)", startTimeout)
			}
			return d, timedOut
		}
	}
	if p.Status.Phase == corev1.PodPending && timedOut {
		return &v1alpha1.Diagnosis{Reason: "StartTimeout", Message: fmt.Sprintf("pending for more than %s", startTimeout), Object: object}, true
	}
	return nil, false
}

// lastExit says how a crash-looping container last ended: a real kubelet's
// CrashLoopBackOff message names only the back-off, and the exit code is what
// tells a bad configuration (1) from a kill (137).
func lastExit(cs corev1.ContainerStatus) string {
	term := cs.LastTerminationState.Terminated
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || term == nil {
		return ""
	}
	return fmt.Sprintf(" (container %s last exited with code %d, %s; %d restarts)", cs.Name, term.ExitCode, orDefault(term.Reason, "Error"), cs.RestartCount)
}

// oomKilled names a container the kernel killed for exceeding its memory
// limit: on a real node a crash loop's cause is in the last termination
// (CrashLoopBackOff alone would hide it), or in the current one for a pod
// that does not restart.
func oomKilled(cs corev1.ContainerStatus, object string) *v1alpha1.Diagnosis {
	term := cs.State.Terminated
	if term == nil || term.Reason != "OOMKilled" {
		if cs.Ready || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.Reason != "OOMKilled" {
			return nil
		}
		term = cs.LastTerminationState.Terminated
	}
	return &v1alpha1.Diagnosis{
		Reason:  "OOMKilled",
		Message: fmt.Sprintf("container %s was killed for exceeding its memory limit (exit code %d, %d restarts); the plan's memory limit is too small for it", cs.Name, term.ExitCode, cs.RestartCount),
		Object:  object,
	}
}
