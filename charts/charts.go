// Package charts embeds the Helm charts storefleet installs, so the operator
// binary carries the exact chart its tests rendered.
package charts

import (
	"embed"
	"io/fs"
)

// The store chart's images/ (the sources of the images it runs, with their
// node_modules while being built) are not part of the chart.
//
//go:embed medusa-store/Chart.yaml medusa-store/values.yaml medusa-store/README.md medusa-store/.helmignore all:medusa-store/templates all:storefleet
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
