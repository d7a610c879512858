// Package charts embeds the Helm charts storefleet installs, so the operator
// binary carries the exact chart its tests rendered.
package charts

import (
	"embed"
	"io/fs"
)

//go:embed all:medusa-store
var files embed.FS

// MedusaStore is the per-store chart's directory tree (Chart.yaml at its root).
func MedusaStore() fs.FS {
	sub, err := fs.Sub(files, "medusa-store")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}
