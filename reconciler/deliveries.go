package reconciler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/discovery"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// DeliveryChoice is the operator's --delivery setting.
type DeliveryChoice string

const (
	// DeliveryAuto uses Flux when its HelmRelease and source CRDs are
	// installed (checked continuously, no restart needed), else the Helm SDK.
	DeliveryAuto DeliveryChoice = "auto"
	DeliveryFlux DeliveryChoice = "flux"
	DeliveryHelm DeliveryChoice = "helm"
)

// Deliveries chooses each store's delivery. A store keeps the delivery it
// was installed with; only its storefleet.dev/delivery annotation moves it,
// and then the release is handed over, never reinstalled.
type Deliveries struct {
	Choice DeliveryChoice
	Helm   *HelmSDK
	// Flux is nil when Flux delivery is not configured.
	Flux *FluxDelivery
	// Discovery tells whether the Flux CRDs are installed.
	Discovery discovery.DiscoveryInterface

	mu        sync.Mutex
	checked   time.Time
	installed bool
}

// fluxCheckInterval bounds how stale the "Flux installed" answer may be.
const fluxCheckInterval = 10 * time.Second

// FluxInstalled reports whether the HelmRelease and HelmRepository CRDs are
// served, from a check at most fluxCheckInterval old.
func (d *Deliveries) FluxInstalled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.checked) < fluxCheckInterval || d.Discovery == nil {
		return d.installed
	}
	d.checked = time.Now()
	d.installed = servesKind(d.Discovery, "helm.toolkit.fluxcd.io/v2", "HelmRelease") &&
		servesKind(d.Discovery, "source.toolkit.fluxcd.io/v1", "HelmRepository")
	return d.installed
}

func servesKind(dc discovery.DiscoveryInterface, groupVersion, kind string) bool {
	list, err := dc.ServerResourcesForGroupVersion(groupVersion)
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

// byMode returns the delivery of a mode, or why it cannot be used now.
func (d *Deliveries) byMode(mode v1alpha1.DeliveryMode) (Delivery, error) {
	switch mode {
	case v1alpha1.DeliveryHelm:
		return d.Helm, nil
	case v1alpha1.DeliveryFlux:
		if d.Flux == nil {
			return nil, fmt.Errorf("flux delivery is not configured on this operator (see --flux-source)")
		}
		if !d.FluxInstalled() {
			return nil, fmt.Errorf("flux delivery needs the Flux HelmRelease and HelmRepository CRDs, which this cluster does not serve: install Flux, or move the store with %s=helm", v1alpha1.DeliveryAnnotation)
		}
		return d.Flux, nil
	}
	return nil, fmt.Errorf("unknown delivery %q (%s takes helm or flux)", mode, v1alpha1.DeliveryAnnotation)
}

// defaultMode is the delivery of a store that has none yet.
func (d *Deliveries) defaultMode() v1alpha1.DeliveryMode {
	switch d.Choice {
	case DeliveryFlux:
		return v1alpha1.DeliveryFlux
	case DeliveryHelm:
		return v1alpha1.DeliveryHelm
	}
	if d.Flux != nil && d.FluxInstalled() {
		return v1alpha1.DeliveryFlux
	}
	return v1alpha1.DeliveryHelm
}

// For returns the delivery a store should use now and, when the store is
// being moved, the one it was installed with (to hand over from).
func (d *Deliveries) For(s *v1alpha1.Store) (current, previous Delivery, err error) {
	installed := installedMode(s)
	target := v1alpha1.DeliveryMode(s.Annotations[v1alpha1.DeliveryAnnotation])
	if target == "" {
		target = installed
	}
	if target == "" {
		target = d.defaultMode()
	}
	if current, err = d.byMode(target); err != nil {
		return nil, nil, err
	}
	if installed != "" && installed != target {
		if previous, err = d.byMode(installed); err != nil {
			return nil, nil, fmt.Errorf("cannot hand the release over from %s: %w", installed, err)
		}
	}
	return current, previous, nil
}

// Installed returns the delivery that holds the store's release (for
// removal): the recorded one, else the one a new store would get.
func (d *Deliveries) Installed(_ context.Context, s *v1alpha1.Store) (Delivery, error) {
	mode := installedMode(s)
	if mode == "" {
		mode = d.defaultMode()
	}
	return d.byMode(mode)
}

func installedMode(s *v1alpha1.Store) v1alpha1.DeliveryMode {
	if s.Status.Release != nil {
		return s.Status.Release.Mode
	}
	return ""
}
