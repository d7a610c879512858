package gitops_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

// Pull-request mode on a real Gitea: the API opens a PR with the manifest;
// merging it provisions the store, which is reported on the PR's commit
// (status) and on the PR (comment). A PR a person opens by hand is handled
// the same way. The forge token appears nowhere it should not.
func TestPullRequestsOnGitea(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cloneURL, err := forge.CreateRepo(ctx, "stores-pr")
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
	client, err := gitsync.NewForge(gitsync.ForgeConfig{Kind: "gitea", URL: forge.URL, Repo: forge.User + "/stores-pr", Token: forge.Token})
	if err != nil {
		t.Fatal(err)
	}
	remote := gitsync.Remote{URL: cloneURL, Branch: "main", Path: "stores", Auth: auth}

	// This repo's reader and reporter, as the operator runs them, in a
	// manager of their own; the operator binary provisions the stores.
	readerDir, writerDir := t.TempDir(), t.TempDir()
	reader, err := gitsync.NewReader(gitsync.ReaderOptions{Remote: remote, Dir: readerDir, Interval: 10 * time.Minute, MaxPrune: 3,
		WebhookSecret: []byte(secret), Client: cluster.Client})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(reader)
	defer hook.Close()
	if err := forge.AddWebhook(ctx, "stores-pr", hook.URL, secret); err != nil {
		t.Fatal(err)
	}
	mgr, err := manager.New(cluster.Config, manager.Options{Scheme: devcluster.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(reader); err != nil {
		t.Fatal(err)
	}
	if err := (&gitsync.Reporter{Forge: client, Commits: reader, Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), DashboardURL: "http://dashboard.test", Log: mgr.GetLogger()}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()

	api, _ := newGitAPI(t, gitsync.WriterOptions{Remote: remote, Dir: writerDir, Mode: gitsync.ModePullRequest, Forge: client})

	t.Run("through the API", func(t *testing.T) {
		const name = "pr-shop"
		var created openapi.Store
		status, body := call(t, http.MethodPost, api.URL+"/api/v1/stores", "dave", `{"name":"`+name+`","engine":"medusa"}`, &created)
		if status != http.StatusAccepted || created.Source == nil || !strings.Contains(created.Source.PullRequest, "/pulls/") {
			t.Fatalf("create in pull-request mode: %d %s", status, body)
		}
		var got openapi.Store
		call(t, http.MethodGet, api.URL+"/api/v1/stores/"+name, "dave", "", &got)
		if got.Phase != "Pending" || !strings.Contains(fmt.Sprint(got.Conditions), "pull request open") {
			t.Fatalf("an unmerged store reads %s %+v", got.Phase, got.Conditions)
		}
		number := prNumber(t, created.Source.PullRequest)
		var files []struct{ Filename string }
		if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/stores-pr/pulls/%d/files", forge.User, number), nil, &files); err != nil {
			t.Fatal(err)
		}
		if len(files) != 1 || files[0].Filename != "stores/"+name+".yaml" {
			t.Fatalf("pull request files: %+v", files)
		}
		// Not merged: nothing in the cluster.
		if liveStore(t, name) != nil {
			t.Fatalf("store exists before its pull request is merged")
		}
		head := mergeAndCheck(t, ctx, number, name)
		if head != created.Source.Commit {
			t.Errorf("status reported on %s, the API's commit was %s", head, created.Source.Commit)
		}
	})

	t.Run("by hand", func(t *testing.T) {
		const name = "hand-shop"
		// A person clones, adds a manifest on a branch, pushes, opens a PR.
		dir := t.TempDir()
		authURL := strings.Replace(cloneURL, "://", "://"+forge.User+":"+forge.Password+"@", 1)
		for _, args := range [][]string{
			{"clone", "-q", authURL, dir},
			{"-C", dir, "checkout", "-q", "-b", "add-" + name},
		} {
			if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v %s", args, err, out)
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, "stores"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stores", name+".yaml"), manifest(name, "erin", "medusa"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"-C", dir, "add", "stores"},
			{"-C", dir, "-c", "user.name=Erin", "-c", "user.email=erin@example.com", "commit", "-q", "-m", "Add " + name},
			{"-C", dir, "push", "-q", "origin", "add-" + name},
		} {
			if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v %s", args, err, out)
			}
		}
		var pr struct{ Number int }
		if err := forge.API(ctx, http.MethodPost, "/repos/"+forge.User+"/stores-pr/pulls", map[string]string{"head": "add-" + name, "base": "main", "title": "Add " + name}, &pr); err != nil {
			t.Fatal(err)
		}
		mergeAndCheck(t, ctx, pr.Number, name)
	})

	t.Run("a commit annotation written by hand", func(t *testing.T) {
		// kubectl can put any commit on a Store: a real commit of the
		// stores repo the reader never applied this store from gets no
		// status, and a path in the annotation reaches no forge URL.
		var branch struct {
			Commit struct {
				ID string `json:"id"`
			} `json:"commit"`
		}
		if err := forge.API(ctx, http.MethodGet, "/repos/"+forge.User+"/stores-pr/branches/main", nil, &branch); err != nil {
			t.Fatal(err)
		}
		head := branch.Commit.ID
		for name, commit := range map[string]string{"annotated-shop": head, "escaping-shop": "../../../" + forge.User + "/stores-pr/statuses/" + head} {
			s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{v1alpha1.CommitAnnotation: commit}},
				Spec: v1alpha1.StoreSpec{Engine: "medusa", Owner: "mallory"}}
			if err := cluster.Client.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"annotated-shop", "escaping-shop"} {
			testenv.Eventually(t, 120*time.Second, name+" to be Ready", func() (bool, error) {
				s := liveStore(t, name)
				return s != nil && s.Status.Phase == "Ready", nil
			})
		}
		// The reporter reconciles each change at once; give it a moment.
		time.Sleep(3 * time.Second)
		var statuses []struct{ Context string }
		if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/stores-pr/commits/%s/statuses", forge.User, head), nil, &statuses); err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if s.Context == "storefleet/annotated-shop" || s.Context == "storefleet/escaping-shop" {
				t.Errorf("a status was posted for a hand-written commit annotation: %s on %s", s.Context, head)
			}
		}
	})

	// The token is in no working copy's config, no Store, no API answer.
	for _, dir := range []string{readerDir, writerDir} {
		cfg, err := os.ReadFile(filepath.Join(dir, ".git", "config"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cfg), forge.Token) {
			t.Errorf("%s/.git/config holds the token", dir)
		}
	}
	_, list := call(t, http.MethodGet, api.URL+"/api/v1/stores?all=true", "dave", "", nil)
	if strings.Contains(list, forge.Token) {
		t.Errorf("an API answer holds the token")
	}
	if st := reader.Status(); strings.Contains(fmt.Sprint(st), forge.Token) {
		t.Errorf("the reader's status holds the token")
	}
}

// mergeAndCheck merges a pull request and waits for the store to be Ready
// and reported: a success status on the commit that introduced the manifest,
// and one comment on the PR. It returns that commit.
func mergeAndCheck(t *testing.T, ctx context.Context, number int, name string) string {
	t.Helper()
	var pr struct {
		Head struct {
			Sha string `json:"sha"`
		} `json:"head"`
	}
	if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/stores-pr/pulls/%d", forge.User, number), nil, &pr); err != nil {
		t.Fatal(err)
	}
	if err := forge.API(ctx, http.MethodPost, fmt.Sprintf("/repos/%s/stores-pr/pulls/%d/merge", forge.User, number), map[string]string{"Do": "merge"}, nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 120*time.Second, name+" to be Ready after the merge", func() (bool, error) {
		s := liveStore(t, name)
		return s != nil && s.Status.Phase == "Ready", nil
	})
	// Gitea answers with "status" where it takes "state".
	var statuses []struct {
		Context, Status, Description string
		TargetURL                    string `json:"target_url"`
	}
	testenv.Eventually(t, 30*time.Second, "a success status on "+pr.Head.Sha, func() (bool, error) {
		if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/stores-pr/commits/%s/statuses", forge.User, pr.Head.Sha), nil, &statuses); err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if s.Context == "storefleet/"+name && s.Status == gitsync.StateSuccess {
				if !strings.Contains(s.Description, "Ready") || s.TargetURL != "http://dashboard.test/stores/"+name {
					t.Fatalf("status: %+v", s)
				}
				return true, nil
			}
		}
		return false, nil
	})
	var comments []struct{ Body string }
	testenv.Eventually(t, 30*time.Second, "the PR comment", func() (bool, error) {
		if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/stores-pr/issues/%d/comments", forge.User, number), nil, &comments); err != nil {
			t.Fatal(err)
		}
		return len(comments) > 0, nil
	})
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "**"+name+"** is Ready") || !strings.Contains(comments[0].Body, "Storefront: http") {
		t.Fatalf("PR comments: %+v", comments)
	}
	testenv.Eventually(t, 10*time.Second, "the store to name its pull request", func() (bool, error) {
		return strings.Contains(liveStore(t, name).Annotations["storefleet.dev/pull-request"], fmt.Sprintf("/pulls/%d", number)), nil
	})
	// Later changes of the store do not comment again.
	time.Sleep(2 * time.Second)
	if err := forge.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/stores-pr/issues/%d/comments", forge.User, number), nil, &comments); err != nil || len(comments) != 1 {
		t.Fatalf("PR comments after a while: %d (%v)", len(comments), err)
	}
	return pr.Head.Sha
}

func prNumber(t testing.TB, url string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(url[strings.LastIndex(url, "/")+1:], "%d", &n); err != nil {
		t.Fatalf("pull request URL %q: %v", url, err)
	}
	return n
}
