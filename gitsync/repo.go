package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// Remote says where the stores repo is and how to reach it.
type Remote struct {
	// URL is the clone URL, https:// (or http:// on loopback) or ssh://. It
	// must not carry credentials: those come from Auth.
	URL string
	// Branch is the branch intents are committed to and synced from.
	Branch string
	// Path is the directory holding one <name>.yaml per store.
	Path string
	// Auth authenticates fetches and pushes; nil for anonymous access.
	Auth transport.AuthMethod
}

// Validate checks the remote's settings before anything is cloned.
func (r Remote) Validate() error {
	ep, err := transport.NewEndpoint(r.URL)
	if err != nil {
		return fmt.Errorf("git URL %q: %w", redact(r.URL), err)
	}
	if ep.User != "" || ep.Password != "" {
		return errors.New("git URL must not contain credentials; pass them with --git-credentials-file")
	}
	switch ep.Protocol {
	case "https", "http", "ssh", "file":
	default:
		return fmt.Errorf("git URL %q: protocol %q is not supported (https, http, ssh or file)", r.URL, ep.Protocol)
	}
	if r.Branch == "" || strings.ContainsAny(r.Branch, " ~^:?*[\\") || strings.Contains(r.Branch, "..") {
		return fmt.Errorf("git branch %q is not a valid branch name", r.Branch)
	}
	if strings.Contains("/"+r.Path+"/", "/../") {
		return fmt.Errorf("git path %q must stay inside the repository", r.Path)
	}
	return nil
}

// Credentials reads a credentials file: "username:password" for basic auth,
// a bare token (sent as basic auth with user "git", which Gitea, GitHub and
// GitLab accept), or an SSH private key. An empty file name means none.
func Credentials(file, url string) (transport.AuthMethod, error) {
	if file == "" {
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("git credentials: %w", err)
	}
	if strings.HasPrefix(url, "ssh://") || strings.Contains(string(data), "PRIVATE KEY") {
		keys, err := gitssh.NewPublicKeys("git", data, "")
		if err != nil {
			return nil, fmt.Errorf("git credentials %s: %w", file, err)
		}
		return keys, nil
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil, fmt.Errorf("git credentials %s: file is empty", file)
	}
	if user, pass, ok := strings.Cut(s, ":"); ok {
		return &githttp.BasicAuth{Username: user, Password: pass}, nil
	}
	return &githttp.BasicAuth{Username: "git", Password: s}, nil
}

// Clone is a working copy of the stores repo that storefleet owns. Its
// .git/config holds the URL only; credentials are passed on every fetch and
// push and never written to disk. A Clone is not safe for concurrent use; the
// Writer and Reader each own one.
type Clone struct {
	remote Remote
	dir    string
	repo   *git.Repository
}

// OpenClone opens the working copy in dir, creating it (an empty repository
// with the remote configured) when absent. Nothing is fetched yet.
func OpenClone(remote Remote, dir string) (*Clone, error) {
	if err := remote.Validate(); err != nil {
		return nil, err
	}
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		repo, err = git.PlainInit(dir, false)
		if err == nil {
			_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{remote.URL}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("git working copy %s: %w", dir, err)
	}
	cfg, err := repo.Config()
	if err != nil {
		return nil, err
	}
	if rc := cfg.Remotes["origin"]; rc == nil || !slices.Equal(rc.URLs, []string{remote.URL}) {
		return nil, fmt.Errorf("git working copy %s belongs to another remote; remove it or choose another directory", dir)
	}
	return &Clone{remote: remote, dir: dir, repo: repo}, nil
}

// Fetch brings the remote's branches up to date and returns the head of the
// given branch, or plumbing.ZeroHash when the branch does not exist yet.
func (c *Clone) Fetch(ctx context.Context, branch string) (plumbing.Hash, error) {
	err := c.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"},
		Auth:       c.remote.Auth,
		Prune:      true,
		Force:      true,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return plumbing.ZeroHash, nil
	default:
		return plumbing.ZeroHash, fmt.Errorf("git fetch %s: %w", redact(c.remote.URL), err)
	}
	return c.remoteHead(branch)
}

// Files returns the files directly under dir at commit, by base name, and
// the names of its subdirectories. ok is false when dir does not exist in
// that commit.
func (c *Clone) Files(commit plumbing.Hash, dir string) (files map[string][]byte, subdirs []string, ok bool, err error) {
	cm, err := c.repo.CommitObject(commit)
	if err != nil {
		return nil, nil, false, err
	}
	tree, err := cm.Tree()
	if err != nil {
		return nil, nil, false, err
	}
	if d := cleanDir(dir); d != "" {
		tree, err = tree.Tree(d)
		if errors.Is(err, object.ErrDirectoryNotFound) {
			return nil, nil, false, nil
		}
		if err != nil {
			return nil, nil, false, err
		}
	}
	files = map[string][]byte{}
	for _, e := range tree.Entries {
		if e.Mode == filemode.Dir {
			subdirs = append(subdirs, e.Name)
			continue
		}
		if !e.Mode.IsFile() {
			continue
		}
		f, err := tree.TreeEntryFile(&e)
		if err != nil {
			return nil, nil, true, err
		}
		r, err := f.Reader()
		if err != nil {
			return nil, nil, true, err
		}
		data, err := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
		r.Close()
		if err != nil {
			return nil, nil, true, err
		}
		files[e.Name] = data
	}
	return files, subdirs, true, nil
}

// File returns one file's content at commit; ok is false when it is absent.
func (c *Clone) File(commit plumbing.Hash, file string) (data []byte, ok bool, err error) {
	cm, err := c.repo.CommitObject(commit)
	if err != nil {
		return nil, false, err
	}
	f, err := cm.File(file)
	if errors.Is(err, object.ErrFileNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r, err := f.Reader()
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	data, err = io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	return data, err == nil, err
}

// maxManifestBytes bounds a manifest: a Store is a few hundred bytes, and a
// huge file is a mistake the reader reports instead of loading.
const maxManifestBytes = 64 << 10

// Author is a commit's author as Git recorded it, "Name <email>", cut to
// what an annotation shows comfortably.
func (c *Clone) Author(commit plumbing.Hash) (string, error) {
	cm, err := c.repo.CommitObject(commit)
	if err != nil {
		return "", err
	}
	a := fmt.Sprintf("%s <%s>", cm.Author.Name, cm.Author.Email)
	if len(a) > 200 {
		a = strings.ToValidUTF8(a[:200], "")
	}
	return a, nil
}

// IntroducedBy finds the commit that introduced blob, file's content at
// head, on head's history: following parents as long as they hold the same
// blob. For a merged pull request that is the PR's own commit, where a forge
// shows statuses. It gives up after limit commits and returns head.
func (c *Clone) IntroducedBy(head *object.Commit, blob plumbing.Hash, file string, limit int) (plumbing.Hash, error) {
	if blob.IsZero() {
		return head.Hash, nil
	}
	cm := head
	for i := 0; i < limit; i++ {
		var next *object.Commit
		err := cm.Parents().ForEach(func(p *object.Commit) error {
			if next != nil {
				return nil
			}
			if b, err := blobAt(p, file); err == nil && b == blob {
				next = p
			}
			return nil
		})
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if next == nil {
			return cm.Hash, nil
		}
		cm = next
	}
	return head.Hash, nil
}

func blobAt(cm *object.Commit, file string) (plumbing.Hash, error) {
	tree, err := cm.Tree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	e, err := tree.FindEntry(file)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return e.Hash, nil
}

// KeepFile holds a stores directory in Git once its last manifest is gone.
const KeepFile = ".keep"

// change is one edit of the stores directory: content for a file, or nil to
// remove it.
type change struct {
	file    string
	content []byte
}

// commitOnto applies ch to base's tree (an empty tree when zero) and
// commits it, from the repository's objects alone: no checkout, no working
// tree to scan. A commit costs the trees on the file's path, not the repo's
// size (a working-tree status hashed every store's file, several times per
// commit). It returns the zero hash when the change alters nothing.
func (c *Clone) commitOnto(base plumbing.Hash, ch change, msg string, author object.Signature) (plumbing.Hash, error) {
	var root *object.Tree
	var parents []plumbing.Hash
	if !base.IsZero() {
		cm, err := c.repo.CommitObject(base)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if root, err = cm.Tree(); err != nil {
			return plumbing.ZeroHash, err
		}
		parents = []plumbing.Hash{base}
	}
	tree, changed, err := c.editTree(root, strings.Split(ch.file, "/"), ch, 0)
	if err != nil || !changed {
		return plumbing.ZeroHash, err
	}
	commit := &object.Commit{Author: author, Committer: author, Message: msg, TreeHash: tree, ParentHashes: parents}
	return c.store(commit)
}

// editTree returns the hash of tree (nil: empty) with ch applied at the
// path parts[depth:], and whether anything changed. It never writes
// through a symbolic link and keeps a directory whose last file goes (with
// KeepFile: the reader takes a missing directory for a mistake and deletes
// nothing).
func (c *Clone) editTree(tree *object.Tree, parts []string, ch change, depth int) (plumbing.Hash, bool, error) {
	var entries []object.TreeEntry
	if tree != nil {
		entries = slices.Clone(tree.Entries)
	}
	name, last := parts[depth], depth == len(parts)-1
	at := slices.IndexFunc(entries, func(e object.TreeEntry) bool { return e.Name == name })
	rel := strings.Join(parts[:depth+1], "/")
	if at >= 0 {
		switch mode := entries[at].Mode; {
		case mode == filemode.Symlink:
			return plumbing.ZeroHash, false, fmt.Errorf("%w: %s is a symbolic link; storefleet never writes through links (make it a plain %s in the repository)", ErrSymlink, rel, kindOfPart(depth, len(parts)))
		case !last && mode != filemode.Dir:
			return plumbing.ZeroHash, false, fmt.Errorf("%w: %s is not a directory", ErrSymlink, rel)
		case last && mode != filemode.Regular && mode != filemode.Executable:
			return plumbing.ZeroHash, false, fmt.Errorf("%w: %s is not a regular file", ErrSymlink, rel)
		}
	}
	switch {
	case last && ch.content == nil:
		if at < 0 {
			return plumbing.ZeroHash, false, nil
		}
		entries = slices.Delete(entries, at, at+1)
		if len(entries) == 0 && depth > 0 {
			keep, err := c.store(blobOf(nil))
			if err != nil {
				return plumbing.ZeroHash, false, err
			}
			entries = []object.TreeEntry{{Name: KeepFile, Mode: filemode.Regular, Hash: keep}}
		}
	case last:
		blob, err := c.store(blobOf(ch.content))
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		if at >= 0 && entries[at].Hash == blob && entries[at].Mode == filemode.Regular {
			return plumbing.ZeroHash, false, nil
		}
		entries = setEntry(entries, at, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob})
	default:
		var sub *object.Tree
		if at >= 0 {
			var err error
			if sub, err = c.repo.TreeObject(entries[at].Hash); err != nil {
				return plumbing.ZeroHash, false, err
			}
		}
		hash, changed, err := c.editTree(sub, parts, ch, depth+1)
		if err != nil || !changed {
			return plumbing.ZeroHash, false, err
		}
		entries = setEntry(entries, at, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: hash})
	}
	// Git's order: by name, a directory compared as if its name ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortFunc(entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	hash, err := c.store(&object.Tree{Entries: entries})
	return hash, err == nil, err
}

// setEntry puts e at index at of entries, or adds it when at is -1.
func setEntry(entries []object.TreeEntry, at int, e object.TreeEntry) []object.TreeEntry {
	if at < 0 {
		return append(entries, e)
	}
	entries[at] = e
	return entries
}

// blobOf is a blob object holding data.
func blobOf(data []byte) *plumbing.MemoryObject {
	obj := &plumbing.MemoryObject{}
	obj.SetType(plumbing.BlobObject)
	_, _ = obj.Write(data) // a MemoryObject does not fail
	return obj
}

// store writes an object (a blob, tree or commit) into the repository.
func (c *Clone) store(o any) (plumbing.Hash, error) {
	var obj plumbing.EncodedObject
	switch v := o.(type) {
	case *plumbing.MemoryObject:
		obj = v
	case interface {
		Encode(plumbing.EncodedObject) error
	}:
		obj = c.repo.Storer.NewEncodedObject()
		if err := v.Encode(obj); err != nil {
			return plumbing.ZeroHash, err
		}
	default:
		return plumbing.ZeroHash, fmt.Errorf("cannot store %T", o)
	}
	return c.repo.Storer.SetEncodedObject(obj)
}

// ErrSymlink is the error (wrapped) of a change whose path in the stores
// repo goes through a symbolic link: the Writer never follows one, so a
// link committed to the repo (stores/x.yaml -> /etc/passwd, stores -> ..)
// cannot make it read or write outside its working copy.
var ErrSymlink = errors.New("the stores repo has a symbolic link on the path storefleet writes")

func kindOfPart(i, n int) string {
	if i == n-1 {
		return "file"
	}
	return "directory"
}

// push pushes commit to the remote branch without force: a remote that moved
// on rejects it, and the caller re-applies its change on the new head.
func (c *Clone) push(ctx context.Context, commit plumbing.Hash, branch string) error {
	local := plumbing.NewBranchReferenceName("storefleet-push")
	if err := c.repo.Storer.SetReference(plumbing.NewHashReference(local, commit)); err != nil {
		return err
	}
	spec := config.RefSpec(local.String() + ":" + plumbing.NewBranchReferenceName(branch).String())
	err := c.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: c.remote.Auth})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("git push %s to %s: %w", commit.String()[:12], branch, err)
	}
	return nil
}

// redact drops userinfo from a URL for messages.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "@"); j >= 0 && !strings.Contains(u[i+3:i+3+j], "/") {
			return u[:i+3] + "***@" + u[i+3+j+1:]
		}
	}
	return u
}

// remoteHead is the last fetched head of a remote branch, or zero.
func (c *Clone) remoteHead(branch string) (plumbing.Hash, error) {
	ref, err := c.repo.Reference(plumbing.NewRemoteReferenceName("origin", branch), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return ref.Hash(), nil
}
