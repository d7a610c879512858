package reconciler

import (
	"context"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Delivery installs, observes and removes a store's chart release. The Helm
// SDK strategy installs in-process; the Flux strategy applies a HelmRelease.
// The reconciler's steps are the same for both.
type Delivery interface {
	// Mode names the strategy in status.release.mode.
	Mode() v1alpha1.DeliveryMode
	// Ensure makes the release match the desired one. It acts only when the
	// release is missing, not deployed, at another digest, or force is set
	// (drift repair); otherwise it only observes.
	Ensure(ctx context.Context, want DesiredRelease, force bool) (ReleaseState, error)
	// Observe reports the release without changing it; found is false when
	// there is none.
	Observe(ctx context.Context, namespace, name string) (state ReleaseState, found bool, err error)
	// Remove uninstalls s's release. It returns what it is waiting for, or
	// "" once nothing of the release is left. What is not s's own (another
	// Store's HelmRelease of the same name) is left alone.
	Remove(ctx context.Context, s *v1alpha1.Store, namespace, name string) (waiting string, err error)
	// Detach lets go of s's release without uninstalling it, so another
	// delivery can take it over (same release name, namespace and storage).
	// It returns what it is waiting for, or "" once let go.
	Detach(ctx context.Context, s *v1alpha1.Store, namespace, name string) (waiting string, err error)
}

// DesiredRelease is what a store's release should be.
type DesiredRelease struct {
	// Store is the store the release is for (owner, labels, retry request).
	Store        *v1alpha1.Store
	Name         string
	Namespace    string
	ChartVersion string
	Values       map[string]any
	Digest       string
}

// ReleaseState is an observed release.
type ReleaseState struct {
	Revision     int
	ChartVersion string
	// Status is Helm's release status (deployed, failed, pending-install, ...).
	Status v1alpha1.HelmStatus
	// Digest is the desired-release digest it was made from.
	Digest string
	// Manifest is the rendered manifest of the release, for drift checks.
	Manifest string
	// Action is what Ensure did: "", "install", "upgrade".
	Action string
	// Reason and Message explain a release that is not deployed, in the
	// words of the component that said so (e.g. helm-controller), verbatim.
	Reason, Message string
	// Events are transitions the delivery saw (e.g. Flux remediations),
	// for the store's activity log.
	Events []v1alpha1.ActivityEntry
}

// Deployed reports whether the release is in Helm's deployed state.
func (r ReleaseState) Deployed() bool { return r.Status == v1alpha1.HelmDeployed }
