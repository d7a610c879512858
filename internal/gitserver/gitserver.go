// Package gitserver serves bare Git repositories over smart HTTP on
// 127.0.0.1 with git's own http-backend, so Flux source-controller and go-git
// (which speak only smart HTTP) can fetch from and push to a real Git server
// in tests and in `storefleet dev`.
package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/storefleet/storefleet/gitsync"
)

// Server is a running smart-HTTP Git server.
type Server struct {
	// Root holds the bare repositories, one directory "<name>.git" each.
	Root string
	// URL is the base URL; a repository is at URL + "/<name>.git".
	URL    string
	mu     sync.Mutex
	onPush func(repo string)

	srv *http.Server
}

// Start serves the bare repositories under root. Pushes are accepted.
func Start(root string) (*Server, error) {
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git not found: %w", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return nil, fmt.Errorf("git http-backend not found: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	handler := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			// Anonymous pushes: the server only listens on loopback.
			"REMOTE_USER=storefleet",
		},
	}
	s := &Server{Root: root, URL: "http://" + l.Addr().String()}
	s.srv = &http.Server{Handler: s.notifying(handler), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// OnPush sets a function called after every push a repository accepted, with
// the repository's name: where a forge would send its webhook.
func (s *Server) OnPush(f func(repo string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPush = f
}

// notifying calls the OnPush function after a successful receive-pack (a push).
func (s *Server) notifying(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") && rec.status == http.StatusOK {
			s.mu.Lock()
			notify := s.onPush
			s.mu.Unlock()
			if notify != nil {
				repo := strings.TrimSuffix(strings.TrimSuffix(r.URL.Path, "/git-receive-pack"), ".git")
				go notify(strings.TrimPrefix(repo, "/"))
			}
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Init creates an empty bare repository and returns its URL.
func (s *Server) Init(name string) (string, error) {
	dir := filepath.Join(s.Root, name+".git")
	if out, err := exec.Command("git", "init", "--bare", "--initial-branch=main", dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("git init: %w: %s", err, out)
	}
	if out, err := exec.Command("git", "-C", dir, "config", "http.receivepack", "true").CombinedOutput(); err != nil {
		return "", fmt.Errorf("git config: %w: %s", err, out)
	}
	return s.RepoURL(name), nil
}

// RepoURL is the clone URL of a repository.
func (s *Server) RepoURL(name string) string { return s.URL + "/" + name + ".git" }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Commit commits files (path → content; nil content removes the path) to a
// repository's branch with the git command line, as a person would, and
// returns the new commit. The branch is created when absent.
func (s *Server) Commit(name, branch, message string, files map[string][]byte) (string, error) {
	dir, err := os.MkdirTemp("", "gitserver-commit-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Test Person", "-c", "user.email=person@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := git("init", "-q", "--initial-branch="+branch); err != nil {
		return "", err
	}
	if _, err := git("fetch", "-q", s.RepoURL(name), branch); err == nil {
		if _, err := git("reset", "-q", "--hard", "FETCH_HEAD"); err != nil {
			return "", err
		}
	}
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if content == nil {
			if _, err := git("rm", "-q", "-r", "--ignore-unmatch", p); err != nil {
				return "", err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, content, 0o644); err != nil {
			return "", err
		}
		if _, err := git("add", p); err != nil {
			return "", err
		}
	}
	if _, err := git("commit", "-q", "--allow-empty", "-m", message); err != nil {
		return "", err
	}
	if _, err := git("push", "-q", s.RepoURL(name), "HEAD:refs/heads/"+branch); err != nil {
		return "", err
	}
	return git("rev-parse", "HEAD")
}

// WebhookOnPush makes every push to repo send a push webhook to url signed
// with secret, as a forge does.
func (s *Server) WebhookOnPush(repo, url string, secret []byte) {
	s.OnPush(func(pushed string) {
		if pushed == repo {
			_, _ = PostSignedWebhook(url, secret)
		}
	})
}

// PostSignedWebhook posts a push event to url with the body's HMAC-SHA256
// under secret in X-Storefleet-Signature, and returns the answer's status.
func PostSignedWebhook(url string, secret []byte) (int, error) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Storefleet-Signature", gitsync.Sign(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
