package v1alpha1

import (
	"regexp"
	"strings"
)

// Annotations a way in (the Intent API, gitsync) puts on a Store to say where
// its intent came from. They live in metadata because status belongs to the
// operator alone; the operator copies them into status.source.
const (
	// ChannelAnnotation is the Channel that created the Store; absent means kubectl.
	ChannelAnnotation = "storefleet.dev/channel"
	// RequestedByAnnotation is the user who asked for the store.
	RequestedByAnnotation = "storefleet.dev/requested-by"
	// RequestIDAnnotation is the id of the API request that created the store.
	RequestIDAnnotation = "storefleet.dev/request-id"
	// CommitAnnotation is the stores-repo commit that declared the store.
	CommitAnnotation = "storefleet.dev/commit"
	// PullRequestAnnotation is the URL of the pull request that declared the store.
	PullRequestAnnotation = "storefleet.dev/pull-request"
)

// DeliveryAnnotation, set to helm or flux, moves a store to that delivery:
// the operator hands the release over without reinstalling it. Without it a
// store keeps the delivery it was installed with.
const DeliveryAnnotation = "storefleet.dev/delivery"

// SourceOf reads a Store's origin from its annotations.
func SourceOf(s *Store) *SourceStatus {
	a := s.Annotations
	src := &SourceStatus{
		Channel:     Channel(a[ChannelAnnotation]),
		User:        a[RequestedByAnnotation],
		RequestID:   a[RequestIDAnnotation],
		Commit:      a[CommitAnnotation],
		PullRequest: a[PullRequestAnnotation],
	}
	switch src.Channel {
	case ChannelAPI, ChannelGit:
	default:
		src.Channel = ChannelKubectl
	}
	return src
}

var labelValueUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// OwnerLabelValue makes an owner id usable as a label value: characters a
// label cannot hold become '_', it is cut to 63 characters and trimmed to
// start and end alphanumerically. Distinct owners may map to one value, so a
// selection by this label is narrowed by spec.owner afterwards.
func OwnerLabelValue(owner string) string {
	v := labelValueUnsafe.ReplaceAllString(owner, "_")
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.TrimFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}
