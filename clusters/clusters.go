// Package clusters embeds the per-environment store chart values, so the
// binary can run with an environment by name (storefleet dev uses "local").
package clusters

import (
	"embed"
	"fmt"
)

//go:embed local/values.yaml prod/values.yaml
var files embed.FS

// Environments are the environments with values files.
var Environments = []string{"local", "prod"}

// Values returns the store chart values file of an environment.
func Values(env string) ([]byte, error) {
	data, err := files.ReadFile(env + "/values.yaml")
	if err != nil {
		return nil, fmt.Errorf("unknown environment %q (have %v)", env, Environments)
	}
	return data, nil
}
