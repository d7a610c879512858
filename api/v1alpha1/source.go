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
	// GitAuthorAnnotation is the author of the stores-repo commit that
	// declared the store, as Git recorded it ("Name <email>"): what anyone
	// who can write to the repo may claim, recorded, not authenticated.
	GitAuthorAnnotation = "storefleet.dev/git-author"
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
	case ChannelGit:
		// Whoever writes to the stores repo writes these annotations too:
		// the requester of a Git store is not known, only the commit and
		// its recorded author.
		src.User, src.RequestID = "", ""
		src.GitAuthor = a[GitAuthorAnnotation]
	case ChannelAPI:
	default:
		src.Channel = ChannelKubectl
	}
	return src
}

// GitProvenanceAnnotations are the annotations a manifest in the stores repo
// may not set: the Git reader writes what it observed itself (channel,
// commit, author) and the forge tells the pull request.
var GitProvenanceAnnotations = []string{ChannelAnnotation, RequestedByAnnotation, RequestIDAnnotation, CommitAnnotation, PullRequestAnnotation, GitAuthorAnnotation}

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
