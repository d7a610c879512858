// Package charts embeds the Helm charts storefleet installs, so the operator
// binary carries the exact chart its tests rendered.
package charts

import (
	"embed"
	"io/fs"
)

//go:embed all:medusa-store all:storefleet
var files embed.FS

// MedusaStore is the per-store chart's directory tree (Chart.yaml at its root).
func MedusaStore() fs.FS { return sub("medusa-store") }

// Storefleet is the platform's own chart (CRD, operator, API).
func Storefleet() fs.FS { return sub("storefleet") }

func sub(dir string) fs.FS {
	s, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return s
}
