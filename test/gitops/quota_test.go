package gitops_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

// A create whose commit takes longer than the quota lock's TTL keeps the
// lock: another replica's create for the same user waits for it and then
// counts it, so a user with a quota of one gets one store, not two.
func TestQuotaLockOutlivesASlowCommit(t *testing.T) {
	if _, err := git.Init("slow"); err != nil {
		t.Fatal(err)
	}
	if _, err := git.Commit("slow", "main", "Start", map[string][]byte{"README.md": []byte("slow\n")}); err != nil {
		t.Fatal(err)
	}
	const ttl, delay = 2 * time.Second, 6 * time.Second
	target, _ := url.Parse(git.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	pushing := make(chan struct{})
	var once sync.Once
	// A slow Git server: every push takes three lock TTLs.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			once.Do(func() { close(pushing) })
			time.Sleep(delay)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	remote := gitsync.Remote{URL: front.URL + "/slow.git", Path: "stores"}
	one := replica{maxStores: 1, lockTTL: ttl}
	first, _ := newReplica(t, gitsync.WriterOptions{Remote: remote}, one)
	second, _ := newReplica(t, gitsync.WriterOptions{Remote: remote}, one)

	codes := make(chan int, 2)
	go func() {
		code, _ := call(t, http.MethodPost, first.URL+"/api/v1/stores", "grace", `{"name":"slow-1","engine":"medusa"}`, nil)
		codes <- code
	}()
	<-pushing
	// The first create is pushing, well past the lock's TTL.
	time.Sleep(2 * ttl)
	code, body := call(t, http.MethodPost, second.URL+"/api/v1/stores", "grace", `{"name":"slow-2","engine":"medusa"}`, nil)
	if got := <-codes; got != http.StatusAccepted {
		t.Fatalf("first create: %d", got)
	}
	if code != http.StatusForbidden || !strings.Contains(body, "quota-exceeded") {
		t.Fatalf("second create on another replica during the first's slow commit: %d %s, want 403 quota-exceeded", code, body)
	}
	if fileAt(t, "slow", "stores/slow-2.yaml") != "" {
		t.Fatalf("the store over the quota was committed")
	}
}

// Pull requests a user has open count against the user's quota on every
// replica, including one started after they were opened; another user's
// create of a name in someone's open pull request is a 409 (and adds
// nothing to that pull request); deleting a store that exists only as a
// pull request closes it, on any replica, and frees the quota.
func TestPendingPullRequestsHoldOnEveryReplica(t *testing.T) {
	ctx := context.Background()
	const repo = "stores-quota"
	cloneURL, err := forge.CreateRepo(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(forge.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := gitsync.Credentials(tokenFile, cloneURL)
	if err != nil {
		t.Fatal(err)
	}
	client, err := gitsync.NewForge(gitsync.ForgeConfig{Kind: "gitea", URL: forge.URL, Repo: forge.User + "/" + repo, Token: forge.Token})
	if err != nil {
		t.Fatal(err)
	}
	opts := func() gitsync.WriterOptions {
		return gitsync.WriterOptions{Remote: gitsync.Remote{URL: cloneURL, Branch: "main", Path: "stores", Auth: auth},
			Mode: gitsync.ModePullRequest, Forge: client}
	}
	// A recent window of a millisecond: the pull requests count because
	// they are open, not because they were opened a moment ago.
	two := replica{maxStores: 2, recentWindow: time.Millisecond}
	first, _ := newReplica(t, opts(), two)
	for _, name := range []string{"quota-pr-1", "quota-pr-2"} {
		if code, body := call(t, http.MethodPost, first.URL+"/api/v1/stores", "heidi", `{"name":"`+name+`","engine":"medusa"}`, nil); code != http.StatusAccepted {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
	}
	// Another replica, started after the pull requests were opened (as
	// after a restart).
	second, _ := newReplica(t, opts(), two)

	code, body := call(t, http.MethodPost, second.URL+"/api/v1/stores", "heidi", `{"name":"quota-pr-3","engine":"medusa"}`, nil)
	if code != http.StatusForbidden || !strings.Contains(body, "quota-exceeded") {
		t.Fatalf("a third create with two pull requests open, on another replica: %d %s, want 403 quota-exceeded", code, body)
	}
	var pending openapi.Store
	call(t, http.MethodGet, second.URL+"/api/v1/stores/quota-pr-1", "heidi", "", &pending)
	if pending.Phase != "Pending" || pending.Source == nil || !strings.Contains(pending.Source.PullRequest, "/pulls/") {
		t.Fatalf("the pending store on another replica: %+v", pending)
	}
	number := prNumber(t, pending.Source.PullRequest)

	// Someone else asks for the name of heidi's open pull request.
	code, body = call(t, http.MethodPost, second.URL+"/api/v1/stores", "ivan", `{"name":"quota-pr-1","engine":"medusa"}`, nil)
	if code != http.StatusConflict {
		t.Fatalf("another user's create of a name in an open pull request: %d %s, want 409", code, body)
	}
	var files []struct{ Filename string }
	if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/%s/pulls/%d/files", forge.User, repo, number), nil, &files); err != nil {
		t.Fatal(err)
	}
	var commits []struct{ Sha string }
	if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/%s/pulls/%d/commits", forge.User, repo, number), nil, &commits); err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || len(commits) != 1 {
		t.Fatalf("heidi's pull request after ivan's create: files %+v, %d commits", files, len(commits))
	}

	// heidi withdraws it through the other replica: the pull request is
	// closed unmerged, with a comment, and its branch is gone.
	var deleted openapi.Store
	code, body = call(t, http.MethodDelete, second.URL+"/api/v1/stores/quota-pr-1", "heidi", "", &deleted)
	if code != http.StatusAccepted || deleted.Phase != "Deleting" || !strings.Contains(fmt.Sprint(deleted.Conditions), "closed without merging") {
		t.Fatalf("delete of a store that is only a pull request: %d %s", code, body)
	}
	var pr struct {
		State  string `json:"state"`
		Merged bool   `json:"merged"`
		Head   struct {
			Ref string `json:"ref"`
		} `json:"head"`
	}
	if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/%s/pulls/%d", forge.User, repo, number), nil, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.State != "closed" || pr.Merged {
		t.Fatalf("the withdrawn pull request: %+v", pr)
	}
	var comments []struct{ Body string }
	if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/%s/issues/%d/comments", forge.User, repo, number), nil, &comments); err != nil {
		t.Fatal(err)
	}
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "Withdrawn by heidi") {
		t.Fatalf("comments on the withdrawn pull request: %+v", comments)
	}
	if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/%s/branches/%s", forge.User, repo, pr.Head.Ref), nil, nil); err == nil {
		t.Errorf("the withdrawn pull request's branch %s is still there", pr.Head.Ref)
	}
	// Gone on the first replica too, and the quota is free again.
	testenv.Eventually(t, 10*time.Second, "the withdrawn store to answer 404 on the first replica", func() (bool, error) {
		code, _ := call(t, http.MethodGet, first.URL+"/api/v1/stores/quota-pr-1", "heidi", "", nil)
		return code == http.StatusNotFound, nil
	})
	if code, body := call(t, http.MethodPost, first.URL+"/api/v1/stores", "heidi", `{"name":"quota-pr-3","engine":"medusa"}`, nil); code != http.StatusAccepted {
		t.Fatalf("a create after withdrawing one: %d %s", code, body)
	}
}
