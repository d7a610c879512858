package gitops_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/internal/gitserver"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

// An API create in git mode is a commit with the manifest and trailers; the
// webhook-triggered sync brings the store to Ready; a delete removes the
// file and the sync deletes the store.
func TestGitIntentEndToEnd(t *testing.T) {
	api, _ := newGitAPI(t, gitsync.WriterOptions{Remote: gitsync.Remote{URL: storesURL, Path: "stores"}})
	const name = "git-acme"
	var created openapi.Store
	status, body := call(t, http.MethodPost, api.URL+"/api/v1/stores", "alice", `{"name":"`+name+`","engine":"medusa"}`, &created)
	if status != http.StatusAccepted {
		t.Fatalf("create: %d %s", status, body)
	}
	if created.Source == nil || len(created.Source.Commit) != 40 || created.Source.Channel != "git" {
		t.Fatalf("create answered without the commit: %+v", created.Source)
	}
	if created.Phase != "Pending" {
		t.Fatalf("a committed store reads %q, want Pending", created.Phase)
	}

	// The commit on the remote: the manifest, the platform as author, the
	// user and request in the trailers.
	file := fileAt(t, "stores", "stores/"+name+".yaml")
	if !strings.Contains(file, "owner: alice") || !strings.Contains(file, "kind: Store") {
		t.Fatalf("manifest in Git:\n%s", file)
	}
	msg := bareGit(t, "stores", "log", "-1", "--format=%an <%ae>%n%B", created.Source.Commit)
	for _, want := range []string{"storefleet <storefleet@storefleet.dev>", "storefleet: add store " + name, "Storefleet-Requested-By: alice", "Storefleet-Request-Id: " + created.Source.RequestID} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
	}

	// Synced by the operator's reader on the webhook, provisioned to Ready.
	var got openapi.Store
	testenv.Eventually(t, 90*time.Second, "the store to be Ready through the API", func() (bool, error) {
		call(t, http.MethodGet, api.URL+"/api/v1/stores/"+name, "alice", "", &got)
		return got.Phase == "Ready", nil
	})
	live := liveStore(t, name)
	if live.Annotations[v1alpha1.CommitAnnotation] != created.Source.Commit || live.Annotations[v1alpha1.ChannelAnnotation] != "git" {
		t.Errorf("synced store's origin: %v", live.Annotations)
	}
	if live.Labels[gitsync.SourceLabel] == "" {
		t.Errorf("synced store lacks %s", gitsync.SourceLabel)
	}

	// Asking again changes nothing: no second commit.
	commits := bareGit(t, "stores", "rev-list", "--count", "main")
	if status, body := call(t, http.MethodPost, api.URL+"/api/v1/stores", "alice", `{"name":"`+name+`","engine":"medusa"}`, nil); status != http.StatusOK {
		t.Fatalf("repeated create: %d %s", status, body)
	}
	if status, _ := call(t, http.MethodPost, api.URL+"/api/v1/stores", "bob", `{"name":"`+name+`","engine":"medusa"}`, nil); status != http.StatusConflict {
		t.Fatalf("another user's create of a taken name: %d, want 409", status)
	}
	if after := bareGit(t, "stores", "rev-list", "--count", "main"); after != commits {
		t.Fatalf("repeated creates committed: %s → %s commits", commits, after)
	}

	// The reader's status through the API.
	var sync openapi.GitSync
	testenv.Eventually(t, 10*time.Second, "the reader's status to show the head", func() (bool, error) {
		call(t, http.MethodGet, api.URL+"/api/v1/gitsync", "alice", "", &sync)
		return sync.Commit == bareGit(t, "stores", "rev-parse", "main"), nil
	})
	if sync.Error != "" || sync.Stores < 1 || sync.Path != "stores" {
		t.Fatalf("gitsync status: %+v", sync)
	}

	// Delete: the file goes, then the store.
	if status, body := call(t, http.MethodDelete, api.URL+"/api/v1/stores/"+name, "alice", "", nil); status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", status, body)
	}
	if f := fileAt(t, "stores", "stores/"+name+".yaml"); f != "" {
		t.Fatalf("manifest still in Git after delete")
	}
	if !strings.Contains(bareGit(t, "stores", "log", "-1", "--format=%B", "main"), "storefleet: remove store "+name) {
		t.Fatalf("no removal commit")
	}
	testenv.Eventually(t, 120*time.Second, "the store to be deleted from the cluster", func() (bool, error) { return liveStore(t, name) == nil, nil })
	// The API reads from its cache, which follows the cluster moments later.
	testenv.Eventually(t, 10*time.Second, "the deleted store to answer 404", func() (bool, error) {
		status, _ := call(t, http.MethodGet, api.URL+"/api/v1/stores/"+name, "alice", "", nil)
		return status == http.StatusNotFound, nil
	})
}

// 20 concurrent API creates while someone else keeps pushing to the same
// branch: every store file lands once, every other commit survives, nothing
// is forced.
func TestPushRace(t *testing.T) {
	url, err := git.Init("race")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := git.Commit("race", "main", "Start", map[string][]byte{"README.md": []byte("race\n")}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	api, _ := newGitAPI(t, gitsync.WriterOptions{Remote: gitsync.Remote{URL: url, Path: "stores"}, Registerer: reg})

	const n = 20
	done := make(chan struct{})
	var others []string
	var otherErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Four people pushing unrelated commits as fast as git lets them.
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				sha, err := git.Commit("race", "main", fmt.Sprintf("note %d-%d", p, i), map[string][]byte{fmt.Sprintf("notes/%d-%d.txt", p, i): []byte("note\n")})
				if err != nil {
					if strings.Contains(err.Error(), "rejected") {
						continue // they lost a race too, and retry
					}
					mu.Lock()
					otherErr = err
					mu.Unlock()
					return
				}
				mu.Lock()
				others = append(others, sha)
				mu.Unlock()
			}
		}()
	}
	landed := func() int { mu.Lock(); defer mu.Unlock(); return len(others) }
	start := time.Now()
	var cw sync.WaitGroup
	codes := make([]int, n)
	// Four waves of five concurrent creates; before each wave the other
	// writers land at least one more commit, so their commits interleave
	// with the API's however loaded the machine is.
	for wave := range 4 {
		before := landed()
		testenv.Eventually(t, 60*time.Second, "another commit by the other writers", func() (bool, error) { return landed() > before, nil })
		for i := wave * 5; i < wave*5+5; i++ {
			cw.Add(1)
			go func() {
				defer cw.Done()
				codes[i], _ = call(t, http.MethodPost, api.URL+"/api/v1/stores", fmt.Sprintf("user-%d", i), fmt.Sprintf(`{"name":"race-%d","engine":"medusa"}`, i), nil)
			}()
		}
	}
	cw.Wait()
	close(done)
	wg.Wait()
	if otherErr != nil {
		t.Fatal(otherErr)
	}
	for i, c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("create race-%d: %d", i, c)
		}
	}
	files := strings.Fields(bareGit(t, "race", "ls-tree", "--name-only", "main", "stores/"))
	if len(files) != n {
		t.Fatalf("%d store files on main, want %d: %v", len(files), n, files)
	}
	subjects := strings.Split(bareGit(t, "race", "log", "--format=%s", "main"), "\n")
	for i := range n {
		want := fmt.Sprintf("storefleet: add store race-%d", i)
		if c := len(slices.DeleteFunc(slices.Clone(subjects), func(s string) bool { return s != want })); c != 1 {
			t.Errorf("store race-%d committed %d times", i, c)
		}
	}
	for _, sha := range others {
		// Exit status 0: the commit is still in main's history.
		bareGit(t, "race", "merge-base", "--is-ancestor", sha, "main")
	}
	retries := sum(t, reg, "storefleet_gitsync_push_retries_total")
	t.Logf("push race: %d API commits, %d other commits, %.0f retries on a moved head, 0 lost", n, len(others), retries)
	// The race happened: other commits sit between the API's first and last.
	history := strings.Split(bareGit(t, "race", "log", "--format=%s", "main"), "\n")
	first, last := -1, -1
	for i, subject := range history {
		if strings.HasPrefix(subject, "storefleet: add store race-") {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	interleaved := 0
	for _, subject := range history[first:last] {
		if strings.HasPrefix(subject, "note ") {
			interleaved++
		}
	}
	if interleaved == 0 {
		t.Fatalf("no other commit landed between the API's commits: the race did not happen")
	}
	t.Logf("%d other commits landed between the API's first and last commit (started %s)", interleaved, start.Format(time.TimeOnly))
}

// sum adds up a counter's series.
func sum(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// The reader never deletes on an emptied tree or beyond the prune limit, and
// one broken manifest does not block the others.
func TestReaderSafety(t *testing.T) {
	url, err := git.Init("safety")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"README.md": []byte("safety\n")}
	var names []string
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("safe-%d", i)
		names = append(names, name)
		// WooCommerce stores are recorded, not provisioned: cheap to sync.
		files["stores/"+name+".yaml"] = manifest(name, "carol", "woocommerce")
	}
	files["stores/broken.yaml"] = []byte("apiVersion: storefleet.dev/v1alpha1\nkind: Store\nmetadata:\n  name: broken\n spec: [\n")
	files["stores/wrong-plan.yaml"] = []byte("apiVersion: storefleet.dev/v1alpha1\nkind: Store\nmetadata:\n  name: wrong-plan\nspec:\n  engine: medusa\n  owner: carol\n  plan: xl\n")
	// Not Stores at a store's place: reported, never applied.
	files["stores/rbac/escalate.yaml"] = []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: git-made-namespace\n")
	files["stores/notes.txt"] = []byte("remember the milk\n")
	if _, err := git.Commit("safety", "main", "Six stores, two broken manifests, two files out of place", files); err != nil {
		t.Fatal(err)
	}
	reader, err := gitsync.NewReader(gitsync.ReaderOptions{
		Remote: gitsync.Remote{URL: url, Branch: "main", Path: "stores"}, Dir: t.TempDir(), MaxPrune: 3,
		Client: cluster.Client,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	count := func() int {
		var l v1alpha1.StoreList
		if err := cluster.Client.List(ctx, &l, client.MatchingLabels{gitsync.SourceLabel: gitsync.SourceDigest(gitsync.Remote{URL: url, Branch: "main", Path: "stores"})}); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range l.Items {
			if s.DeletionTimestamp.IsZero() {
				n++
			}
		}
		return n
	}

	st := reader.Sync(ctx)
	if st.Stores != 6 || len(st.Applied) != 6 || count() != 6 {
		t.Fatalf("first sync: %d valid, applied %v, %d in the cluster; status %+v", st.Stores, st.Applied, count(), st)
	}
	var problems []string
	for _, p := range st.Invalid {
		problems = append(problems, p.String())
	}
	report := strings.Join(problems, "\n")
	for _, want := range []string{"stores/broken.yaml:4: invalid YAML", `stores/wrong-plan.yaml:8: spec.plan: Unsupported value: "xl"`,
		"stores/rbac/: " + gitsync.NotAStorePlace, "stores/notes.txt: " + gitsync.NotAStorePlace} {
		if !strings.Contains(report, want) {
			t.Errorf("invalid manifests reported as:\n%s\nwant %q", report, want)
		}
	}
	if err := cluster.Client.Get(ctx, client.ObjectKey{Name: "git-made-namespace"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Namespace in a subdirectory of stores/ was applied (%v)", err)
	}
	// A store made with kubectl is never the reader's to prune.
	handMade := &v1alpha1.Store{}
	handMade.Name = "hand-made"
	handMade.Spec = v1alpha1.StoreSpec{Engine: v1alpha1.EngineWooCommerce, Owner: "carol"}
	if err := cluster.Client.Create(ctx, handMade); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(ctx, handMade) })

	// Five removed, limit three: nothing deleted, the refusal reported.
	remove := map[string][]byte{}
	for _, name := range names[:5] {
		remove["stores/"+name+".yaml"] = nil
	}
	if _, err := git.Commit("safety", "main", "Remove five", remove); err != nil {
		t.Fatal(err)
	}
	st = reader.Sync(ctx)
	if !strings.Contains(st.Error, "would delete 5 stores") || !strings.Contains(st.Error, "--git-max-prune=3") || count() != 6 {
		t.Fatalf("over the prune limit: error %q, %d stores left", st.Error, count())
	}

	// The directory emptied: nothing deleted, reported.
	remove = map[string][]byte{"stores": nil}
	if _, err := git.Commit("safety", "main", "Empty the stores directory", remove); err != nil {
		t.Fatal(err)
	}
	st = reader.Sync(ctx)
	if !strings.Contains(st.Error, "stores/ holds no store manifest") || count() != 6 {
		t.Fatalf("emptied tree: error %q, %d stores left", st.Error, count())
	}

	// All back but one: that one is pruned, nothing else.
	restore := map[string][]byte{}
	for _, name := range names[:5] {
		restore["stores/"+name+".yaml"] = manifest(name, "carol", "woocommerce")
	}
	if _, err := git.Commit("safety", "main", "Restore five, keep safe-6 removed", restore); err != nil {
		t.Fatal(err)
	}
	st = reader.Sync(ctx)
	if st.Error != "" || !slices.Equal(st.Pruned, []string{"safe-6"}) {
		t.Fatalf("one removal: pruned %v, error %q", st.Pruned, st.Error)
	}
	testenv.Eventually(t, 60*time.Second, "safe-6 to be gone", func() (bool, error) { return liveStore(t, "safe-6") == nil, nil })
	if count() != 5 || liveStore(t, "hand-made") == nil {
		t.Fatalf("%d synced stores left, hand-made present: %v", count(), liveStore(t, "hand-made") != nil)
	}
	for _, name := range names[:5] {
		_ = cluster.Client.Delete(ctx, liveStore(t, name))
	}
}

// The webhook accepts only bodies signed with the shared secret.
func TestWebhookSignature(t *testing.T) {
	if code, _ := gitserver.PostSignedWebhook(webhookURL, []byte("wrong-secret")); code != http.StatusUnauthorized {
		t.Fatalf("wrongly signed webhook: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodPost, webhookURL, strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned webhook: %d, want 401", resp.StatusCode)
	}
	if code, _ := gitserver.PostSignedWebhook(webhookURL, []byte(secret)); code != http.StatusAccepted {
		t.Fatalf("signed webhook: %d, want 202", code)
	}
}

// A push the remote rejects because the branch moved after the fetch is
// re-applied on the new head: the other commit stays, the store lands once.
func TestRejectedPushIsReapplied(t *testing.T) {
	if _, err := git.Init("moved"); err != nil {
		t.Fatal(err)
	}
	if _, err := git.Commit("moved", "main", "Start", map[string][]byte{"README.md": []byte("moved\n")}); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(git.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var once sync.Once
	var other string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			// Someone else pushes between the writer's fetch and its push.
			once.Do(func() {
				var err error
				other, err = git.Commit("moved", "main", "note from someone else", map[string][]byte{"notes/other.txt": []byte("x\n")})
				if err != nil {
					t.Error(err)
				}
			})
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	reg := prometheus.NewRegistry()
	api, _ := newGitAPI(t, gitsync.WriterOptions{Remote: gitsync.Remote{URL: front.URL + "/moved.git", Path: "stores"}, Registerer: reg})
	if status, body := call(t, http.MethodPost, api.URL+"/api/v1/stores", "frank", `{"name":"moved-shop","engine":"medusa"}`, nil); status != http.StatusAccepted {
		t.Fatalf("create: %d %s", status, body)
	}
	if retries := sum(t, reg, "storefleet_gitsync_push_retries_total"); retries != 1 {
		t.Fatalf("%.0f retries, want 1 (the rejected push re-applied once)", retries)
	}
	bareGit(t, "moved", "merge-base", "--is-ancestor", other, "main")
	if fileAt(t, "moved", "stores/moved-shop.yaml") == "" || fileAt(t, "moved", "notes/other.txt") == "" {
		t.Fatalf("main lacks the store or the other commit")
	}
}

// The reader adopts no store it did not create, its prune limit counts the
// deletions of earlier syncs (and of the leader before a restart), and a
// stores directory left with only other files counts as empty.
func TestReaderNeitherAdoptsNorOutrunsThePruneLimit(t *testing.T) {
	ctx := context.Background()
	url, err := git.Init("prune-window")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"window-a", "window-b", "window-c", "window-d", "window-e"}
	files := map[string][]byte{"stores/hand-made-2.yaml": manifest("hand-made-2", "carol", "woocommerce")}
	for _, name := range names {
		files["stores/"+name+".yaml"] = manifest(name, "carol", "woocommerce")
	}
	// A store made with kubectl before its manifest reached the repo.
	handMade := &v1alpha1.Store{}
	handMade.Name = "hand-made-2"
	handMade.Spec = v1alpha1.StoreSpec{Engine: v1alpha1.EngineWooCommerce, Owner: "carol"}
	if err := cluster.Client.Create(ctx, handMade); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.Delete(ctx, handMade)
		for _, name := range names {
			if s := liveStore(t, name); s != nil {
				_ = cluster.Client.Delete(ctx, s)
			}
		}
	})
	if _, err := git.Commit("prune-window", "main", "Five stores and one that kubectl made", files); err != nil {
		t.Fatal(err)
	}
	statusNS := &corev1.Namespace{}
	statusNS.Name = "gitsync-prune-window"
	if err := cluster.Client.Create(ctx, statusNS); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	remote := gitsync.Remote{URL: url, Branch: "main", Path: "stores"}
	newReader := func(namespace string, maxPrune int) *gitsync.Reader {
		r, err := gitsync.NewReader(gitsync.ReaderOptions{Remote: remote, Dir: t.TempDir(), MaxPrune: maxPrune, Namespace: namespace, Client: cluster.Client})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	leader := newReader(statusNS.Name, 3)
	st := leader.Sync(ctx)
	if len(st.Applied) != len(names) || !strings.Contains(st.Error, "store hand-made-2 exists and was not created from this stores repo (it was made through kubectl); it is not adopted") {
		t.Fatalf("first sync: applied %v, error %q", st.Applied, st.Error)
	}
	if s := liveStore(t, "hand-made-2"); s == nil || s.Labels[gitsync.SourceLabel] != "" {
		t.Fatalf("the kubectl store was adopted: %+v", s)
	}

	remove := func(msg string, which ...string) {
		t.Helper()
		change := map[string][]byte{}
		for _, name := range which {
			change["stores/"+name+".yaml"] = nil
		}
		if _, err := git.Commit("prune-window", "main", msg, change); err != nil {
			t.Fatal(err)
		}
	}
	remove("Remove two", "window-a", "window-b")
	if st = leader.Sync(ctx); !slices.Equal(st.Pruned, []string{"window-a", "window-b"}) {
		t.Fatalf("two removed: pruned %v, error %q", st.Pruned, st.Error)
	}
	// Two more, after a restart (a new leader): with the two before that is
	// over the limit of three.
	remove("Remove two more", "window-c", "window-d")
	restarted := newReader(statusNS.Name, 3)
	st = restarted.Sync(ctx)
	if len(st.Pruned) != 0 || !strings.Contains(st.Error, "would delete 2 stores (window-c, window-d) after 2 deleted since") || !strings.Contains(st.Error, "(window-a, window-b)") {
		t.Fatalf("over the limit across syncs and a restart: pruned %v, error %q", st.Pruned, st.Error)
	}
	for _, name := range []string{"window-c", "window-d"} {
		if s := liveStore(t, name); s == nil || !s.DeletionTimestamp.IsZero() {
			t.Fatalf("%s was deleted beyond the prune limit", name)
		}
	}

	// Every manifest replaced by other files: the directory counts as empty
	// (a reader with no recent prunes and room for ten still deletes none).
	change := map[string][]byte{"stores/window-e.yaml": nil, "stores/hand-made-2.yaml": nil,
		"stores/README.md":     []byte("stores moved to another repo\n"),
		"stores/settings.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n")}
	if _, err := git.Commit("prune-window", "main", "Only notes left", change); err != nil {
		t.Fatal(err)
	}
	st = newReader("", 10).Sync(ctx)
	if len(st.Pruned) != 0 || !strings.Contains(st.Error, "stores/ holds no store manifest") {
		t.Fatalf("a directory of non-Store files: pruned %v, error %q", st.Pruned, st.Error)
	}
	for _, name := range []string{"window-c", "window-d", "window-e"} {
		if s := liveStore(t, name); s == nil || !s.DeletionTimestamp.IsZero() {
			t.Fatalf("%s was deleted because of a directory of non-Store files", name)
		}
	}
}

// Provenance of a Git store is what the reader saw: the commit and its
// recorded author. Requester and pull-request annotations written in a
// manifest are not carried over.
func TestGitProvenanceIsObservedNotDeclared(t *testing.T) {
	ctx := context.Background()
	url, err := git.Init("provenance")
	if err != nil {
		t.Fatal(err)
	}
	forged := []byte(`apiVersion: storefleet.dev/v1alpha1
kind: Store
metadata:
  name: provenance-shop
  annotations:
    storefleet.dev/requested-by: admin@platform
    storefleet.dev/request-id: forged-request
    storefleet.dev/pull-request: https://evil.example/pulls/1
    storefleet.dev/commit: "0000000000000000000000000000000000000000"
    storefleet.dev/channel: api
spec:
  engine: woocommerce
  owner: carol
`)
	commit, err := git.Commit("provenance", "main", "A store with forged provenance", map[string][]byte{"stores/provenance-shop.yaml": forged})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := gitsync.NewReader(gitsync.ReaderOptions{Remote: gitsync.Remote{URL: url, Branch: "main", Path: "stores"}, Dir: t.TempDir(), Client: cluster.Client})
	if err != nil {
		t.Fatal(err)
	}
	if st := reader.Sync(ctx); st.Error != "" || len(st.Applied) != 1 {
		t.Fatalf("sync: %+v", st)
	}
	s := liveStore(t, "provenance-shop")
	if s == nil {
		t.Fatal("store not applied")
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(ctx, s) })
	ann := s.Annotations
	for _, k := range []string{v1alpha1.RequestedByAnnotation, v1alpha1.RequestIDAnnotation, v1alpha1.PullRequestAnnotation} {
		if v, ok := ann[k]; ok {
			t.Errorf("annotation %s=%q was taken from the manifest", k, v)
		}
	}
	if ann[v1alpha1.ChannelAnnotation] != "git" || ann[v1alpha1.CommitAnnotation] != commit || ann[v1alpha1.GitAuthorAnnotation] != "Test Person <person@example.com>" {
		t.Errorf("observed provenance: channel %q, commit %q (want %s), author %q", ann[v1alpha1.ChannelAnnotation], ann[v1alpha1.CommitAnnotation], commit, ann[v1alpha1.GitAuthorAnnotation])
	}
	if src := v1alpha1.SourceOf(s); src.User != "" || src.GitAuthor != "Test Person <person@example.com>" {
		t.Errorf("source = %+v", src)
	}
}

// TestSyncSendsOnlyWhatChanged: a sync applies the stores whose manifest
// changed, not every store in the repo (each apply is a request to the API
// server, and a push that adds one store to a repo of many used to cost one
// per store), yet a Store edited by hand gets what Git says back.
func TestSyncSendsOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	url, err := git.Init("quiet")
	if err != nil {
		t.Fatal(err)
	}
	suspended := func(name string) []byte {
		return append(manifest(name, "quinn", "medusa"), []byte("  suspend: true\n")...)
	}
	files := map[string][]byte{}
	for _, name := range []string{"quiet-a", "quiet-b", "quiet-c"} {
		files["stores/"+name+".yaml"] = suspended(name)
		t.Cleanup(func() { _ = cluster.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}}) })
	}
	if _, err := git.Commit("quiet", "main", "Three stores", files); err != nil {
		t.Fatal(err)
	}
	reader, err := gitsync.NewReader(gitsync.ReaderOptions{Remote: gitsync.Remote{URL: url, Branch: "main", Path: "stores"}, Dir: t.TempDir(), Client: cluster.Client})
	if err != nil {
		t.Fatal(err)
	}
	storeApplies := func() float64 {
		s, err := testenv.ScrapeAPIServer(cluster)
		if err != nil {
			t.Fatal(err)
		}
		return s.Sum("apiserver_request_total", map[string]string{"verb": "APPLY", "resource": "stores"})
	}
	syncApplying := func(what string, wantApplied []string, wantRequests float64) {
		t.Helper()
		before := storeApplies()
		st := reader.Sync(ctx)
		if st.Error != "" || strings.Join(st.Applied, ",") != strings.Join(wantApplied, ",") {
			t.Fatalf("%s: sync applied %v (error %q), want %v", what, st.Applied, st.Error, wantApplied)
		}
		if got := storeApplies() - before; got != wantRequests {
			t.Errorf("%s: the sync sent %v applies of stores to the API server, want %v", what, got, wantRequests)
		}
	}
	syncApplying("first sync", []string{"quiet-a", "quiet-b", "quiet-c"}, 3)
	syncApplying("nothing changed", nil, 0)

	if _, err := git.Commit("quiet", "main", "A fourth store", map[string][]byte{"stores/quiet-d.yaml": suspended("quiet-d")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "quiet-d"}})
	})
	syncApplying("one store added", []string{"quiet-d"}, 1)

	// Someone strips the reader's channel annotation: the next sync puts
	// it back, though the manifest did not change.
	patch := []byte(`{"metadata":{"annotations":{"` + v1alpha1.ChannelAnnotation + `":null}}}`)
	if err := cluster.Client.Patch(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "quiet-b"}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	syncApplying("an annotation removed by hand", []string{"quiet-b"}, 1)
	if got := liveStore(t, "quiet-b").Annotations[v1alpha1.ChannelAnnotation]; got != "git" {
		t.Errorf("channel annotation after the sync: %q, want git", got)
	}
}
