package reconciler

import (
	"context"
	"crypto/sha256"
	"fmt"

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
	// Manifest is the rendered manifest of the release, for drift checks:
	// empty in a release the memo vouched for, which keeps only its digest
	// (see manifest).
	Manifest string
	// storedManifest reads Manifest from Helm's storage; digest is its
	// SHA-256. Both are set in a release whose manifest is not held.
	storedManifest func(context.Context) (string, error)
	digest         [sha256.Size]byte
	// Action is what Ensure did: "", "install", "upgrade".
	Action string
	// Reason and Message explain a release that is not deployed, in the
	// words of the component that said so (e.g. helm-controller), verbatim.
	Reason, Message string
	// Events are transitions the delivery saw (e.g. Flux remediations),
	// for the store's activity log.
	Events []v1alpha1.ActivityEntry
}

// manifestDigest is the SHA-256 of the release's manifest, held or not.
func (r *ReleaseState) manifestDigest() [sha256.Size]byte {
	if r.Manifest == "" && r.storedManifest != nil {
		return r.digest
	}
	return sha256.Sum256([]byte(r.Manifest))
}

// manifest is the release's manifest, read from Helm's storage (once) when
// the state does not hold it: a drift check needs it only when an object
// changed or the manifest is new to it, so the memo keeps no manifests.
func (r *ReleaseState) manifest(ctx context.Context) (string, error) {
	if r.Manifest != "" || r.storedManifest == nil {
		return r.Manifest, nil
	}
	m, err := r.storedManifest(ctx)
	if err != nil {
		return "", err
	}
	if sha256.Sum256([]byte(m)) != r.digest {
		return "", fmt.Errorf("release revision %d in Helm's storage is not the one read before", r.Revision)
	}
	r.Manifest = m
	return m, nil
}

// takeManifest makes the state's manifest rel's, held or to be read.
func (r *ReleaseState) takeManifest(rel ReleaseState) {
	r.Manifest, r.storedManifest, r.digest = rel.Manifest, rel.storedManifest, rel.digest
}

// Deployed reports whether the release is in Helm's deployed state.
func (r ReleaseState) Deployed() bool { return r.Status == v1alpha1.HelmDeployed }
