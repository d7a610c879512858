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

//go:embed local/platform/platform-values.yaml prod/platform/platform-values.yaml local/platform/real-node-values.yaml
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

// RealNodeValues are the store chart values that put a store on the local
// cluster's real node (clusters/local/platform/real-node-values.yaml), merged over
// the local environment's by the operator's --stores-on-real-node.
func RealNodeValues() ([]byte, error) { return files.ReadFile("local/platform/real-node-values.yaml") }

// Merge merges src into dst: maps key by key, anything else replaced.
func Merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				Merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}
