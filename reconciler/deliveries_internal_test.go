package reconciler

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

func TestDeliveriesChooseWithoutSilentSwitches(t *testing.T) {
	helm, flux := &HelmSDK{}, &FluxDelivery{}
	store := func(installed v1alpha1.DeliveryMode, annotation string) *v1alpha1.Store {
		s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "s", Annotations: map[string]string{}}}
		if installed != "" {
			s.Status.Release = &v1alpha1.ReleaseStatus{Mode: installed}
		}
		if annotation != "" {
			s.Annotations[v1alpha1.DeliveryAnnotation] = annotation
		}
		return s
	}
	cases := []struct {
		name          string
		choice        DeliveryChoice
		fluxOn        bool
		fluxInstalled bool
		store         *v1alpha1.Store
		current       Delivery
		previous      Delivery
		err           string
	}{
		{name: "auto, Flux installed: new store uses Flux", choice: DeliveryAuto, fluxOn: true, fluxInstalled: true, store: store("", ""), current: flux},
		{name: "auto, no Flux CRDs: Helm SDK", choice: DeliveryAuto, fluxOn: true, store: store("", ""), current: helm},
		{name: "auto, Flux not configured: Helm SDK", choice: DeliveryAuto, fluxInstalled: true, store: store("", ""), current: helm},
		{name: "helm forced", choice: DeliveryHelm, fluxOn: true, fluxInstalled: true, store: store("", ""), current: helm},
		{name: "installed with Helm stays Helm when Flux appears", choice: DeliveryAuto, fluxOn: true, fluxInstalled: true, store: store(v1alpha1.DeliveryHelm, ""), current: helm},
		{name: "annotation moves Helm to Flux", choice: DeliveryAuto, fluxOn: true, fluxInstalled: true, store: store(v1alpha1.DeliveryHelm, "flux"), current: flux, previous: helm},
		{name: "annotation moves Flux to Helm", choice: DeliveryAuto, fluxOn: true, fluxInstalled: true, store: store(v1alpha1.DeliveryFlux, "helm"), current: helm, previous: flux},
		{name: "annotation on a new store", choice: DeliveryAuto, fluxOn: true, fluxInstalled: true, store: store("", "helm"), current: helm},
		{name: "Flux store after Flux was removed", choice: DeliveryAuto, fluxOn: true, store: store(v1alpha1.DeliveryFlux, ""), err: "install Flux, or move the store"},
		{name: "unknown annotation", choice: DeliveryAuto, store: store("", "argo"), err: `unknown delivery "argo"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &Deliveries{Choice: c.choice, Helm: helm, checked: time.Now(), installed: c.fluxInstalled}
			if c.fluxOn {
				d.Flux = flux
			}
			current, previous, err := d.For(c.store)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || current != c.current || previous != c.previous {
				t.Fatalf("got %T, %T, %v; want %T, %T", current, previous, err, c.current, c.previous)
			}
		})
	}
}
