// Package clusters embeds the per-environment store chart values, so the
// binary can run with an environment by name (storefleet dev uses "local").
// They are the storeValues section of clusters/<env>/platform/platform-values.yaml,
// the same values Flux gives the platform chart there: one source for both.
package clusters

import (
	"embed"
	"fmt"

	"sigs.k8s.io/yaml"
)

//go:embed local/platform/platform-values.yaml prod/platform/platform-values.yaml
var files embed.FS

// Environments are the environments with values files.
var Environments = []string{"local", "prod"}

// Values returns the store chart values of an environment, as YAML.
func Values(env string) ([]byte, error) {
	data, err := files.ReadFile(env + "/platform/platform-values.yaml")
	if err != nil {
		return nil, fmt.Errorf("unknown environment %q (have %v)", env, Environments)
	}
	var platform struct {
		StoreValues map[string]any `json:"storeValues"`
	}
	if err := yaml.Unmarshal(data, &platform); err != nil {
		return nil, fmt.Errorf("clusters/%s/platform/platform-values.yaml: %w", env, err)
	}
	if len(platform.StoreValues) == 0 {
		return nil, fmt.Errorf("clusters/%s/platform/platform-values.yaml has no storeValues", env)
	}
	return yaml.Marshal(platform.StoreValues)
}
