package gitsync

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// manifestMeta is the part of ObjectMeta a person writes in a stores repo.
type manifestMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type manifest struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   manifestMeta       `json:"metadata"`
	Spec       v1alpha1.StoreSpec `json:"spec"`
}

// ManifestOf renders a Store as the YAML committed to the stores repo: what a
// person would write by hand, without status or server-set metadata.
func ManifestOf(s *v1alpha1.Store) ([]byte, error) {
	out, err := yaml.Marshal(manifest{
		APIVersion: v1alpha1.GroupVersion.String(),
		Kind:       "Store",
		Metadata:   manifestMeta{Name: s.Name, Labels: s.Labels, Annotations: s.Annotations},
		Spec:       s.Spec,
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", s.Name, err)
	}
	return out, nil
}
