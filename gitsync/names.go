// Package gitsync keeps a Git "stores repo" and the cluster in step: a Writer
// commits Store manifests for the Intent API (push or pull request), a Reader
// applies the manifests it finds to the cluster when Flux is absent, a
// Reporter writes the outcome back onto commits and pull requests, and
// Validate checks manifests offline for the stores repo's own CI.
//
// The Reader is spread over files by job: reader.go runs it (options,
// interval, triggers), sync.go applies the manifests, prune.go deletes the
// Stores Git no longer declares, status.go records each sync in the status
// ConfigMap the API reads, webhook.go accepts the forge's push webhook.
package gitsync

import (
	"fmt"
	"path"
	"regexp"
	"slices"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

var storeName = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// CheckName applies the Store name rules (the CRD's CEL rules, in Go): a
// name that passes is also a safe file name, with no separator and no dot.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name is empty")
	case len(name) > v1alpha1.MaxNameLength:
		return fmt.Errorf("name must be at most %d characters", v1alpha1.MaxNameLength)
	case !storeName.MatchString(name):
		return fmt.Errorf("name %q must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit", name)
	case slices.Contains(v1alpha1.ReservedNames, name):
		return fmt.Errorf("name %q is reserved", name)
	}
	return nil
}

// ManifestPath is the repository path of a store's manifest: dir/<name>.yaml.
// It is only ever built from a name CheckName accepts, so no name can escape
// dir.
func ManifestPath(dir, name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return path.Join(cleanDir(dir), name+".yaml"), nil
}

// cleanDir normalizes a repository directory: slash-separated, relative,
// "" for the root.
func cleanDir(dir string) string {
	d := path.Clean("/" + dir)[1:]
	return d
}

// join is path.Join for repository paths.
func join(dir, name string) string { return path.Join(cleanDir(dir), name) }
