package gitsync

import (
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// Every owner id makes a valid branch of its own: two users asking for one
// name never share (and so never continue) a pull request branch.
func TestCreateBranchIsPerOwner(t *testing.T) {
	owners := []string{"alice", "Alice", "alice@example.com", "alice_example.com", "a..b", "x.lock",
		"..", "", "ünïcode user", strings.Repeat("long-owner-", 20), "CN=alice,OU=dev"}
	seen := map[string]string{}
	for _, owner := range owners {
		branch := CreateBranch(owner, "shop")
		if err := plumbing.NewBranchReferenceName(branch).Validate(); err != nil {
			t.Errorf("owner %q: branch %q is not a valid ref: %v", owner, branch, err)
		}
		if !strings.HasPrefix(branch, "storefleet/") || !strings.HasSuffix(branch, "/shop") {
			t.Errorf("owner %q: branch %q", owner, branch)
		}
		if other, ok := seen[branch]; ok {
			t.Errorf("owners %q and %q share the branch %q", other, owner, branch)
		}
		seen[branch] = owner
	}
	// Derived, not remembered: a restarted replica names the same branch.
	if first, again := CreateBranch("alice", "shop"), CreateBranch("alice", "shop"); first != again {
		t.Errorf("one owner's repeated create must continue its own branch")
	}
}
