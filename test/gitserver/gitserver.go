// Package gitserver serves bare Git repositories over smart HTTP on
// 127.0.0.1 with git's own http-backend, so Flux source-controller and go-git
// (which speak only smart HTTP) can fetch from and push to a real Git server
// in tests and in `storefleet dev`.
package gitserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Server is a running smart-HTTP Git server.
type Server struct {
	// Root holds the bare repositories, one directory "<name>.git" each.
	Root string
	// URL is the base URL; a repository is at URL + "/<name>.git".
	URL string

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
	s := &Server{Root: root, URL: "http://" + l.Addr().String(), srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
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
