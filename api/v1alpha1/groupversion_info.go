// Package v1alpha1 is the storefleet.dev/v1alpha1 API: the Store resource,
// its condition types and reasons, and the names (finalizer, labels,
// annotations) every other package agrees on.
//
// +kubebuilder:object:generate=true
// +groupName=storefleet.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of the Store resource.
	GroupVersion = schema.GroupVersion{Group: "storefleet.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
