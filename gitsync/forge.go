package gitsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Forge is what storefleet needs from a Git hosting service: open pull
// requests for intents, and report store outcomes on commits and PRs.
type Forge interface {
	// OpenPullRequest opens a pull request from head into base, or returns
	// the one already open for head.
	OpenPullRequest(ctx context.Context, pr PullRequestSpec) (PullRequest, error)
	// PullRequestFor returns the pull request a commit belongs to, or nil.
	PullRequestFor(ctx context.Context, commit string) (*PullRequest, error)
	// SetStatus sets the commit status with st.Context on commit.
	SetStatus(ctx context.Context, commit string, st CommitStatus) error
	// Comment adds a comment to a pull request.
	Comment(ctx context.Context, number int, body string) error
	PullRequests
}

// PullRequestSpec is a pull request to open.
type PullRequestSpec struct {
	Head, Base, Title, Body string
}

// PullRequest identifies an open or merged pull request.
type PullRequest struct {
	Number int
	URL    string
}

// Commit status states, as both Gitea and GitHub name them.
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
	StateError   = "error"
)

// CommitStatus is one status line on a commit.
type CommitStatus struct {
	Context     string `json:"context"`
	State       string `json:"state"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url,omitempty"`
}

// ForgeConfig selects and configures a forge client.
type ForgeConfig struct {
	// Kind is gitea or github.
	Kind string
	// URL is the forge's base URL (https://gitea.example.com, or
	// https://api.github.com for GitHub).
	URL string
	// Repo is owner/name.
	Repo string
	// Token is an API token with write access to the repository.
	Token string
}

// NewForge returns the client for cfg.Kind.
func NewForge(cfg ForgeConfig) (Forge, error) {
	owner, name, ok := strings.Cut(cfg.Repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("forge repository %q must be owner/name", cfg.Repo)
	}
	base, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("forge URL %q is not an absolute URL", cfg.URL)
	}
	if cfg.Token == "" {
		return nil, errors.New("forge token is empty")
	}
	f := &restForge{
		owner: owner, repo: name, token: cfg.Token,
		http: &http.Client{Timeout: 20 * time.Second},
	}
	switch cfg.Kind {
	case "gitea":
		f.api = base.String() + "/api/v1"
		f.authScheme = "token"
		f.prOfCommit = "/commits/%s/pull"
	case "github":
		f.api = base.String()
		f.authScheme = "Bearer"
		f.prOfCommit = "/commits/%s/pulls"
		f.github = true
	default:
		return nil, fmt.Errorf("forge %q is not supported (gitea or github)", cfg.Kind)
	}
	return f, nil
}

// restForge speaks the REST dialect Gitea and GitHub share: the same
// resources, payloads and states, with a few paths and the "PR already
// exists" answer differing.
type restForge struct {
	api, owner, repo, token string
	authScheme              string
	prOfCommit              string
	github                  bool
	http                    *http.Client
}

type prJSON struct {
	Number  int    `json:"number"`
	HTMLURL string `json:"html_url"`
	State   string `json:"state"`
	Head    struct {
		Ref string `json:"ref"`
		Sha string `json:"sha"`
	} `json:"head"`
	MergeCommitSha string `json:"merge_commit_sha"`
}

func (f *restForge) OpenPullRequest(ctx context.Context, spec PullRequestSpec) (PullRequest, error) {
	var pr prJSON
	status, err := f.do(ctx, http.MethodPost, "/pulls", map[string]string{"head": spec.Head, "base": spec.Base, "title": spec.Title, "body": spec.Body}, &pr)
	if err == nil {
		return PullRequest{Number: pr.Number, URL: pr.HTMLURL}, nil
	}
	// Gitea answers 409 and GitHub 422 when head already has an open PR.
	if status != http.StatusConflict && status != http.StatusUnprocessableEntity {
		return PullRequest{}, err
	}
	open, lerr := f.OpenPullRequestFrom(ctx, spec.Head)
	if lerr != nil {
		return PullRequest{}, lerr
	}
	if open != nil {
		return *open, nil
	}
	return PullRequest{}, err
}

func (f *restForge) PullRequestFor(ctx context.Context, commit string) (*PullRequest, error) {
	if err := checkCommitID(commit); err != nil {
		return nil, err
	}
	path := fmt.Sprintf(f.prOfCommit, commit)
	if f.github {
		var prs []prJSON
		if _, err := f.do(ctx, http.MethodGet, path, nil, &prs); err != nil {
			return nil, err
		}
		if len(prs) == 0 {
			return nil, nil
		}
		return &PullRequest{Number: prs[0].Number, URL: prs[0].HTMLURL}, nil
	}
	var pr prJSON
	status, err := f.do(ctx, http.MethodGet, path, nil, &pr)
	if err == nil {
		return &PullRequest{Number: pr.Number, URL: pr.HTMLURL}, nil
	}
	if status != http.StatusNotFound {
		return nil, err
	}
	// Gitea finds a PR by its merge commit only; the commit that introduced
	// a manifest is the PR's head, so look through the recent PRs.
	var recent []prJSON
	if _, err := f.do(ctx, http.MethodGet, "/pulls?state=all&sort=recentupdate&limit=50", nil, &recent); err != nil {
		return nil, err
	}
	for _, p := range recent {
		if p.Head.Sha == commit || p.MergeCommitSha == commit {
			return &PullRequest{Number: p.Number, URL: p.HTMLURL}, nil
		}
	}
	return nil, nil
}

func (f *restForge) SetStatus(ctx context.Context, commit string, st CommitStatus) error {
	if err := checkCommitID(commit); err != nil {
		return err
	}
	if len(st.Description) > 140 {
		// Both forges cap descriptions; GitHub rejects longer ones.
		st.Description = st.Description[:137] + "..."
	}
	_, err := f.do(ctx, http.MethodPost, "/statuses/"+commit, st, nil)
	return err
}

// checkCommitID keeps anything but a commit id out of the forge API paths
// the commit is part of.
func checkCommitID(commit string) error {
	if !ValidCommitID(commit) {
		return fmt.Errorf("%q is not a full commit id (40 or 64 hex digits); nothing sent to the forge", commit)
	}
	return nil
}

func (f *restForge) Comment(ctx context.Context, number int, body string) error {
	_, err := f.do(ctx, http.MethodPost, fmt.Sprintf("/issues/%d/comments", number), map[string]string{"body": body}, nil)
	return err
}

// do calls a repository-relative endpoint. The token goes in a header only;
// errors carry the method, path and the forge's message, never the token.
func (f *restForge) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		js, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(js)
	}
	u := f.api + "/repos/" + url.PathEscape(f.owner) + "/" + url.PathEscape(f.repo) + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", f.authScheme+" "+f.token)
	req.Header.Set("Accept", "application/json")
	if f.github {
		req.Header.Set("Accept", "application/vnd.github+json")
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("forge %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var msg struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &msg)
		if msg.Message == "" {
			msg.Message = strings.TrimSpace(string(data))
		}
		return resp.StatusCode, &ForgeError{Method: method, Path: path, Status: resp.StatusCode, StatusText: resp.Status,
			Message: msg.Message, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("forge %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// ForgeError is a forge's answer other than 2xx.
type ForgeError struct {
	Method, Path string
	Status       int
	// StatusText is the status line ("403 Forbidden").
	StatusText string
	// Message is the forge's own explanation.
	Message string
	// RetryAfter is the forge's Retry-After, zero when it sent none.
	RetryAfter time.Duration
}

func (e *ForgeError) Error() string {
	return fmt.Sprintf("forge %s %s: %s: %s", e.Method, e.Path, e.StatusText, e.Message)
}

// Transient reports whether the same request may succeed later: the forge
// failing (5xx) or throttling with a Retry-After. Any other 4xx (a token
// without the right scope, a branch that does not exist, a rejected
// payload) answers the same every time, so it is not retried.
func (e *ForgeError) Transient() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests && e.RetryAfter > 0
}

// maxForgeRetryAfter is the longest Retry-After the Writer waits out: its
// lock (and the caller's quota lock) are held meanwhile, so a longer one
// fails the request with the forge's message instead.
const maxForgeRetryAfter = 10 * time.Second

// forgeRetry says whether a failed attempt that involved the forge is worth
// another, and how long to wait first at least. Errors that are not the
// forge's answer (the network, Git) are left to the caller's rules.
func forgeRetry(err error) (forge, retry bool, wait time.Duration) {
	var fe *ForgeError
	if !errors.As(err, &fe) {
		return false, false, 0
	}
	if !fe.Transient() || fe.RetryAfter > maxForgeRetryAfter {
		return true, false, 0
	}
	return true, true, fe.RetryAfter
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
