package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/gitserver"
)

// devRepo is the stores repo `storefleet dev` provides: a bare repository
// served over smart HTTP, or a local Gitea with --forge.
type devRepo struct {
	server *gitserver.Server
	forge  *devcluster.Gitea
}

func (r *devRepo) stop() {
	if r.server != nil {
		_ = r.server.Close()
	}
	if r.forge != nil {
		r.forge.Stop()
	}
}

func (r *devRepo) describe(g gitFlags) string {
	if r.forge != nil {
		return fmt.Sprintf("%s (Gitea %s, user %s / %s)", g.url, r.forge.URL, r.forge.User, r.forge.Password)
	}
	if r.server == nil {
		return g.url
	}
	return g.url + "  (git clone it, add stores/<name>.yaml, push)"
}

// setupDevGit gives dev a stores repo with a webhook to the operator's Git
// reader, unless --git-url names one.
func setupDevGit(ctx context.Context, g *gitFlags, op *operatorFlags, api *apiFlags, dir string, withForge bool) (*devRepo, error) {
	repo := &devRepo{}
	if g.workdir == "" {
		g.workdir = filepath.Join(dir, "git-work")
	}
	if g.dashboardURL == "" {
		g.dashboardURL = "http://" + api.addr
	}
	if g.url != "" {
		return repo, nil
	}
	port, err := devcluster.FreePort()
	if err != nil {
		return nil, err
	}
	op.gitWebhookAddr = fmt.Sprintf("127.0.0.1:%d", port)
	webhook := "http://" + op.gitWebhookAddr + gitsync.WebhookPath
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	secretHex := hex.EncodeToString(secret)
	op.gitWebhookSecret = filepath.Join(dir, "git-webhook-secret")
	if err := os.WriteFile(op.gitWebhookSecret, []byte(secretHex), 0o600); err != nil {
		return nil, err
	}
	op.gitInterval = 30 * time.Second

	if withForge {
		fmt.Println("Starting the local forge (Gitea) ...")
		forge, err := devcluster.StartGitea(ctx, filepath.Join(dir, "forge"), os.Stdout)
		if err != nil {
			return nil, err
		}
		repo.forge = forge
		if g.url, err = forge.CreateRepo(ctx, "stores"); err != nil {
			repo.stop()
			return nil, err
		}
		if err := forge.AddWebhook(ctx, "stores", webhook, secretHex); err != nil {
			repo.stop()
			return nil, err
		}
		token := filepath.Join(dir, "forge-token")
		if err := os.WriteFile(token, []byte(forge.Token), 0o600); err != nil {
			repo.stop()
			return nil, err
		}
		g.credentialsFile, g.forgeTokenFile = token, token
		g.forge, g.forgeURL, g.forgeRepo = "gitea", forge.URL, forge.User+"/stores"
		api.intent, api.gitMode = "git", string(gitsync.ModePullRequest)
		return repo, nil
	}

	srv, err := gitserver.Start(filepath.Join(dir, "git"))
	if err != nil {
		return nil, err
	}
	repo.server = srv
	if g.url, err = srv.Init("stores"); err != nil {
		repo.stop()
		return nil, err
	}
	readme := "# Stores\n\nOne Store manifest per file: " + g.path + "/<name>.yaml. Check them with `storefleet validate " + g.path + "`.\n"
	if _, err := srv.Commit("stores", g.branch, "Start the stores repo", map[string][]byte{"README.md": []byte(readme), g.path + "/" + gitsync.KeepFile: {}}); err != nil {
		repo.stop()
		return nil, err
	}
	// What a forge does on push: a signed webhook to the reader.
	srv.WebhookOnPush("stores", webhook, []byte(secretHex))
	return repo, nil
}
