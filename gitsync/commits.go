package gitsync

import (
	"container/list"
	"sync"
)

// ValidCommitID reports whether s is a full Git commit id as Git prints it:
// 40 lower-case hex digits (SHA-1) or 64 (SHA-256). The commit annotation of
// a Store is writable by whoever may write Stores, and it ends up in forge
// API paths: only an id, never "../../repos/x" or a branch name, may go there.
func ValidCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Commits tells the Reporter which commit the Git reader stamped on which
// store, so only outcomes of stores the reader applied from that commit are
// reported: an annotation someone wrote by hand (kubectl, a manifest that
// names a commit of its own) never makes the operator post to the forge.
type Commits interface {
	// Stamped reports whether the reader applied store from commit; known
	// is false until the reader has read the repository once since it
	// started (its record is in memory), so a miss cannot be trusted yet.
	Stamped(store, commit string) (stamped, known bool)
}

// maxStampedCommits bounds the reader's record: every sync stamps each
// declared store again and so keeps it, far below this for any stores repo
// one platform runs; the oldest stamps go first.
const maxStampedCommits = 4096

// stampedCommits is a bounded record of (store, commit) pairs, least
// recently stamped evicted first. It is safe for concurrent use: the reader
// writes it, the reporter reads it.
type stampedCommits struct {
	mu    sync.Mutex
	max   int
	known bool
	order *list.List // of string keys, most recent at the front
	index map[string]*list.Element
}

func newStampedCommits(max int) *stampedCommits {
	return &stampedCommits{max: max, order: list.New(), index: map[string]*list.Element{}}
}

func stampKey(store, commit string) string { return store + "@" + commit }

// add records that store was applied from commit.
func (s *stampedCommits) add(store, commit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := stampKey(store, commit)
	if e, ok := s.index[key]; ok {
		s.order.MoveToFront(e)
		return
	}
	s.index[key] = s.order.PushFront(key)
	for s.order.Len() > s.max {
		oldest := s.order.Back()
		s.order.Remove(oldest)
		delete(s.index, oldest.Value.(string))
	}
}

// markKnown says the record now covers every store the repository declared
// at the last sync.
func (s *stampedCommits) markKnown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known = true
}

func (s *stampedCommits) Stamped(store, commit string) (stamped, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, stamped = s.index[stampKey(store, commit)]
	return stamped, s.known
}
