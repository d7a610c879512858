package gitops_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/gitsync"
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
	const ttl, delay = time.Second, 4 * time.Second
	target, _ := url.Parse(git.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	pushing := make(chan struct{})
	var once sync.Once
	// A slow Git server: every push takes four lock TTLs.
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
