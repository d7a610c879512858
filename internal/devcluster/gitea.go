package devcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Gitea is a local Gitea forge on 127.0.0.1: a real Git host with pull
// requests, commit statuses, comments and webhooks, for the pull-request
// tests and `storefleet dev --forge`.
type Gitea struct {
	// URL is the forge's base URL.
	URL string
	// User and Password are the admin account; Token is its API token.
	User, Password, Token string
	// Dir holds the forge's configuration, database and repositories.
	Dir string
	cmd *exec.Cmd
	bin string
	ini string
}

// StartGitea builds Gitea if needed (about 7 minutes the first time), then
// starts it with a fresh SQLite database in dir and an admin account.
func StartGitea(ctx context.Context, dir string, log io.Writer) (*Gitea, error) {
	t := ForgeTools()
	if len(t.Missing()) > 0 {
		fmt.Fprintf(log, "Building the local forge (Gitea %s) into %s, once:\n", GiteaVersion, t.Dir)
		if _, err := t.Build(ctx, log); err != nil {
			return nil, err
		}
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("gitea needs git on PATH: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	g := &Gitea{URL: fmt.Sprintf("http://127.0.0.1:%d", port), User: "storefleet", Password: "storefleet-local-1", Dir: dir, bin: t.Bin("gitea")}
	if err := os.MkdirAll(filepath.Join(dir, "custom", "conf"), 0o755); err != nil {
		return nil, err
	}
	g.ini = filepath.Join(dir, "custom", "conf", "app.ini")
	root := ""
	if os.Geteuid() == 0 {
		// CI runs as root; Gitea refuses that unless told it is deliberate.
		root = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n"
	}
	ini := root + fmt.Sprintf(`APP_NAME = storefleet local forge
RUN_MODE = prod
WORK_PATH = %[1]s
[server]
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[2]d
ROOT_URL = %[3]s/
STATIC_ROOT_PATH = %[4]s
DISABLE_SSH = true
OFFLINE_MODE = true
LFS_START_SERVER = false
[database]
DB_TYPE = sqlite3
PATH = %[1]s/data/gitea.db
[repository]
ROOT = %[1]s/data/repos
DEFAULT_BRANCH = main
[security]
INSTALL_LOCK = true
SECRET_KEY = storefleet-local-forge-only
[service]
DISABLE_REGISTRATION = true
[webhook]
; storefleet's webhook listens on loopback.
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 10
[log]
MODE = file
LEVEL = info
ROOT_PATH = %[1]s/log
[cron]
ENABLED = false
[indexer]
REPO_INDEXER_ENABLED = false
[mailer]
ENABLED = false
[actions]
ENABLED = false
`, dir, port, g.URL, filepath.Dir(t.Asset("gitea", "options")))
	if err := os.WriteFile(g.ini, []byte(ini), 0o600); err != nil {
		return nil, err
	}
	if _, err := g.admin(ctx, "migrate"); err != nil {
		return nil, err
	}
	if _, err := g.admin(ctx, "admin", "user", "create", "--admin", "--username", g.User, "--password", g.Password,
		"--email", "storefleet@example.com", "--must-change-password=false"); err != nil {
		return nil, err
	}
	token, err := g.admin(ctx, "admin", "user", "generate-access-token", "--username", g.User, "--token-name", "storefleet", "--scopes", "all", "--raw")
	if err != nil {
		return nil, err
	}
	if g.Token, err = accessToken(token); err != nil {
		return nil, err
	}

	logf, err := os.Create(filepath.Join(dir, "gitea.log"))
	if err != nil {
		return nil, err
	}
	g.cmd = exec.Command(g.bin, "--config", g.ini, "web")
	g.cmd.Env = g.env()
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var v struct{ Version string }
		if err := g.API(ctx, http.MethodGet, "/version", nil, &v); err == nil {
			return g, nil
		}
		if time.Now().After(deadline) {
			g.Stop()
			return nil, fmt.Errorf("gitea did not answer on %s within 60s; see %s", g.URL, logf.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (g *Gitea) env() []string {
	return append(os.Environ(), "GITEA_WORK_DIR="+g.Dir, "HOME="+g.Dir)
}

// admin runs a Gitea admin command and returns what it printed on stdout.
// Its log lines go to stderr, kept apart: a log line written last must not
// be read as the command's answer.
func (g *Gitea) admin(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, g.bin, append([]string{"--config", g.ini}, args...)...)
	cmd.Env = g.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("gitea %s: %w: %s", strings.Join(args[:min(3, len(args))], " "), err, LastLines(string(out)+stderr.String(), 5))
	}
	return string(out), nil
}

// accessToken finds the token in what generate-access-token --raw printed:
// the one line of 40 hexadecimal digits.
func accessToken(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if len(line) == 40 && strings.Trim(line, "0123456789abcdef") == "" {
			return line, nil
		}
	}
	return "", fmt.Errorf("gitea generate-access-token printed no token: %q", LastLines(out, 5))
}

// API calls Gitea's REST API (/api/v1 + path) as the admin.
func (g *Gitea) API(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		js, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.URL+"/api/v1"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+g.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gitea %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// CreateRepo creates a repository of the admin with a first commit on main
// and returns its clone URL.
func (g *Gitea) CreateRepo(ctx context.Context, name string) (string, error) {
	var repo struct {
		CloneURL string `json:"clone_url"`
	}
	err := g.API(ctx, http.MethodPost, "/user/repos", map[string]any{"name": name, "auto_init": true, "default_branch": "main", "readme": "Default"}, &repo)
	return repo.CloneURL, err
}

// AddWebhook makes Gitea send its push events to url, signed with secret.
func (g *Gitea) AddWebhook(ctx context.Context, repo, url, secret string) error {
	return g.API(ctx, http.MethodPost, "/repos/"+g.User+"/"+repo+"/hooks", map[string]any{
		"type": "gitea", "active": true, "events": []string{"push"},
		"config": map[string]string{"url": url, "content_type": "json", "secret": secret},
	}, nil)
}

// Stop ends the forge.
func (g *Gitea) Stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
