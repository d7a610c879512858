package v1alpha1

import _ "embed"

// CRDManifest is the generated CustomResourceDefinition of Store (make
// generate writes it from the markers in this package). Tests, `storefleet
// dev` and the platform chart all install this one file.
//
//go:embed crd/storefleet.dev_stores.yaml
var CRDManifest []byte
