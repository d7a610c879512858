package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/storefleet/storefleet/gitsync"
)

// gitFlags name the stores repo and the forge hosting it; the operator (Git
// reader, outcome reporter) and the API (Git intent) share them.
type gitFlags struct {
	url, branch, path, credentialsFile, workdir string
	forge, forgeURL, forgeRepo, forgeTokenFile  string
	dashboardURL                                string
}

func (g *gitFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "git-url", "", "stores repo clone URL (https://, ssh://; no credentials in it)")
	fs.StringVar(&g.branch, "git-branch", "main", "stores repo branch")
	fs.StringVar(&g.path, "git-path", "stores", "directory of the stores repo holding one <name>.yaml per store")
	fs.StringVar(&g.credentialsFile, "git-credentials-file", "", "file with a token, user:password, or an SSH private key for the stores repo (e.g. a mounted Secret)")
	fs.StringVar(&g.workdir, "git-workdir", "", "directory for storefleet's working copies of the stores repo (default: a temporary directory)")
	fs.StringVar(&g.forge, "forge-kind", "", "forge hosting the stores repo, for pull requests and commit statuses: gitea or github")
	fs.StringVar(&g.forgeURL, "forge-url", "", "forge base URL (https://gitea.example.com; https://api.github.com for GitHub)")
	fs.StringVar(&g.forgeRepo, "forge-repo", "", "the stores repo on the forge, owner/name")
	fs.StringVar(&g.forgeTokenFile, "forge-token-file", "", "file with the forge API token")
	fs.StringVar(&g.dashboardURL, "dashboard-url", "", "dashboard base URL; commit statuses link to <dashboard-url>/stores/<name>")
}

// remote resolves the stores repo settings, credentials included.
func (g *gitFlags) remote() (gitsync.Remote, error) {
	r := gitsync.Remote{URL: g.url, Branch: g.branch, Path: g.path}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("--git-url/--git-branch/--git-path: %w", err)
	}
	auth, err := gitsync.Credentials(g.credentialsFile, g.url)
	if err != nil {
		return r, fmt.Errorf("--git-credentials-file: %w", err)
	}
	r.Auth = auth
	return r, nil
}

// forgeClient returns the configured forge, or nil when --forge-kind is unset.
func (g *gitFlags) forgeClient() (gitsync.Forge, error) {
	if g.forge == "" {
		return nil, nil
	}
	if g.forgeTokenFile == "" {
		return nil, errors.New("--forge-kind needs --forge-token-file")
	}
	token, err := os.ReadFile(g.forgeTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--forge-token-file: %w", err)
	}
	f, err := gitsync.NewForge(gitsync.ForgeConfig{Kind: g.forge, URL: g.forgeURL, Repo: g.forgeRepo, Token: strings.TrimSpace(string(token))})
	if err != nil {
		return nil, fmt.Errorf("--forge-kind: %w", err)
	}
	return f, nil
}

// dir is the working copy directory of one component.
func (g *gitFlags) dir(component string) (string, error) {
	base := g.workdir
	if base == "" {
		var err error
		if base, err = os.MkdirTemp("", "storefleet-git-"); err != nil {
			return "", err
		}
	}
	return filepath.Join(base, component), nil
}

// newGitWriter builds the API's Git intent.
func (g *gitFlags) newGitWriter(mode string) (*gitsync.Writer, error) {
	remote, err := g.remote()
	if err != nil {
		return nil, err
	}
	forge, err := g.forgeClient()
	if err != nil {
		return nil, err
	}
	dir, err := g.dir("writer")
	if err != nil {
		return nil, err
	}
	return gitsync.NewWriter(gitsync.WriterOptions{
		Remote: remote, Dir: dir, Mode: gitsync.Mode(mode), Forge: forge,
		Author: object.Signature{Name: "storefleet", Email: "storefleet@storefleet.dev"},
	})
}
