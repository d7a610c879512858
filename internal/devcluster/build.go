// Package devcluster builds and runs a real Kubernetes control plane on
// 127.0.0.1: etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
// with kwok simulating the node and the pods, and optionally the Flux
// helm-controller and source-controller. Tests start it from TestMain and
// `storefleet dev` starts it for a newcomer; both share this code.
package devcluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/sys/unix"

	"github.com/storefleet/storefleet/internal/imagebuild"
)

// component is one upstream Go module from which binaries are built through a
// small generated wrapper module.
type component struct {
	Name    string
	Module  string
	Version string
	// Main is the source of a main package for modules without a command.
	Main string `json:",omitempty"`
	// LDFlags are passed to every binary of the component.
	LDFlags string `json:",omitempty"`
	// Replace holds extra "old => new version" pins beyond those derived from
	// the component's own go.mod.
	Replace  []string `json:",omitempty"`
	Binaries []binary
	// Assets are files or directories of the module copied beside the binaries
	// (kwok's default stages, Flux CRDs).
	Assets []string `json:",omitempty"`
	// Tags are Go build tags; CGO builds with cgo (Gitea's SQLite driver).
	Tags string `json:",omitempty"`
	CGO  bool   `json:",omitempty"`
}

type binary struct {
	Name    string
	Package string
}

// Tools is a directory of built binaries and their assets.
type Tools struct {
	Dir string
	set []component
}

// Bin returns the path of a built binary.
func (t Tools) Bin(name string) string { return filepath.Join(t.Dir, "bin", name) }

// Asset returns the path of a file copied from a component's module.
func (t Tools) Asset(componentName, rel string) string {
	return filepath.Join(t.Dir, "assets", componentName, filepath.FromSlash(rel))
}

// CacheDir is where storefleet keeps what it builds outside the clone
// (imagebuild.CacheRoot: the images live beside the binaries).
func CacheDir() string { return imagebuild.CacheRoot() }

// DefaultTools is the versioned directory for the pinned component set: a
// change of any version or build flag yields a new directory, so a stale
// binary is never reused.
func DefaultTools() Tools { return toolsFor("", components) }

// ForgeTools is the versioned directory of the local forge (Gitea), kept
// apart from the control plane so neither invalidates the other's cache.
func ForgeTools() Tools { return toolsFor("forge-", forgeComponents) }

// NodeTools is the versioned directory of the real node's programs
// (containerd, CoreDNS, kube-router, crictl).
func NodeTools() Tools { return toolsFor("node-", nodeComponents) }

// GitOpsTools is the versioned directory of kustomize-controller, which
// applies Kustomizations (clusters/<env>, the stores repo) with Flux.
func GitOpsTools() Tools { return toolsFor("gitops-", gitopsComponents) }

func toolsFor(prefix string, set []component) Tools {
	spec, _ := json.Marshal(struct {
		Go         string
		Components []component
	}{runtime.Version(), set})
	sum := sha256.Sum256(spec)
	return Tools{Dir: filepath.Join(CacheDir(), "bin", prefix+hex.EncodeToString(sum[:])[:12]), set: set}
}

// Missing lists the binaries and assets not yet built.
func (t Tools) Missing() []string {
	var missing []string
	for _, c := range t.set {
		missing = append(missing, c.missing(t)...)
	}
	return missing
}

// Locate returns the built tools or an error that says how to build them.
func Locate() (Tools, error) {
	t := DefaultTools()
	if m := t.Missing(); len(m) > 0 {
		return t, fmt.Errorf("local control plane binaries missing in %s (%s): run `make tools` first", t.Dir, strings.Join(m, ", "))
	}
	return t, nil
}

// Build builds every missing binary of the pinned components into
// DefaultTools, printing progress to log. Built binaries are kept, so a second
// run only checks. A cold build takes about 27 minutes on 2 cores.
func Build(ctx context.Context, log io.Writer) (Tools, error) {
	return DefaultTools().Build(ctx, log)
}

// Build builds t's missing binaries.
func (t Tools) Build(ctx context.Context, log io.Writer) (Tools, error) {
	if err := os.MkdirAll(filepath.Join(t.Dir, "bin"), 0o755); err != nil {
		return t, err
	}
	gocache, release, err := toolBuildCache()
	if err != nil {
		return t, err
	}
	for _, c := range t.set {
		if err := buildComponent(ctx, t, c, gocache, log); err != nil {
			release(false)
			return t, fmt.Errorf("build %s %s: %w", c.Name, c.Version, err)
		}
	}
	return t, release(true)
}

// toolBuildCache is the Go build cache the tool sets compile in: one for
// all of them, since they share much (the three Flux controllers of one Flux
// release, the Kubernetes client libraries), and make prepare builds them at
// once. It is not the user's cache: once the binaries are kept it is worth
// nothing (a version change rebuilds from new sources) and it is many
// gigabytes, which a CI disk runs out of. Each builder holds a shared lock on
// it while it builds; the last one to finish successfully removes it (after
// a failure it stays, so a retry resumes).
func toolBuildCache() (dir string, release func(ok bool) error, err error) {
	dir = filepath.Join(CacheDir(), "gocache-tools")
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return "", nil, err
	}
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return dir, func(ok bool) error {
		defer f.Close()
		// Exclusive only when no other builder holds it shared.
		if !ok || unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			return nil
		}
		return os.RemoveAll(dir)
	}, nil
}

func (c component) missing(t Tools) []string {
	var missing []string
	for _, b := range c.Binaries {
		if _, err := os.Stat(t.Bin(b.Name)); err != nil {
			missing = append(missing, b.Name)
		}
	}
	for _, a := range c.Assets {
		if _, err := os.Stat(t.Asset(c.Name, a)); err != nil {
			missing = append(missing, c.Name+":"+a)
		}
	}
	return missing
}

func buildComponent(ctx context.Context, t Tools, c component, gocache string, log io.Writer) error {
	if len(c.missing(t)) == 0 {
		fmt.Fprintf(log, "  ok    %-18s %s (cached)\n", c.Name, c.Version)
		return nil
	}
	start := time.Now()
	fmt.Fprintf(log, "  build %-18s %s ...\n", c.Name, c.Version)
	work := filepath.Join(CacheDir(), "src", c.Name+"-"+c.Version)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	mod, err := downloadModule(ctx, c.Module, c.Version)
	if err != nil {
		return err
	}
	if err := writeWrapper(work, c, mod); err != nil {
		return err
	}
	if _, err := goCmd(ctx, work, "mod", "tidy", "-e"); err != nil {
		return err
	}
	if err := goBuild(ctx, t, c, work, gocache); err != nil {
		return err
	}
	for _, a := range c.Assets {
		if err := copyTree(filepath.Join(mod.Dir, filepath.FromSlash(a)), t.Asset(c.Name, a)); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "  done  %-18s %s in %s\n", c.Name, c.Version, time.Since(start).Round(time.Second))
	return nil
}

// goBuild builds all of a component's binaries in one `go build`, so commands
// of one module (the Kubernetes ones) share their compilation and the linker
// runs them in parallel; each lands in the cache only once it is complete.
func goBuild(ctx context.Context, t Tools, c component, work, gocache string) error {
	tmp, err := os.MkdirTemp(filepath.Join(t.Dir, "bin"), ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// -s -w strip the symbols and DWARF from the binaries; -dwarf=false
	// spares the compiler generating the DWARF in the first place (a cold
	// build is CPU-bound and the tools are never debugged here).
	args := []string{"build", "-trimpath", "-gcflags=all=-dwarf=false", "-ldflags", strings.TrimSpace("-s -w " + c.LDFlags)}
	if c.Tags != "" {
		args = append(args, "-tags", c.Tags)
	}
	if len(c.Binaries) == 1 {
		args = append(args, "-o", filepath.Join(tmp, c.Binaries[0].Name), c.Binaries[0].Package)
	} else {
		// With several packages, -o names a directory and each binary is named
		// after its package's last element (checked in versions_test).
		args = append(args, "-o", tmp+string(filepath.Separator))
		for _, b := range c.Binaries {
			args = append(args, b.Package)
		}
	}
	cgo := "CGO_ENABLED=0"
	if c.CGO {
		cgo = "CGO_ENABLED=1"
	}
	if _, err := goCmdEnv(ctx, work, []string{cgo, "GOCACHE=" + gocache}, args...); err != nil {
		return err
	}
	for _, b := range c.Binaries {
		if err := os.Rename(filepath.Join(tmp, b.Name), t.Bin(b.Name)); err != nil {
			return err
		}
	}
	return nil
}

type moduleInfo struct {
	Dir   string
	GoMod string
	Error string
}

func downloadModule(ctx context.Context, path, version string) (moduleInfo, error) {
	var info moduleInfo
	out, err := goCmd(ctx, "", "mod", "download", "-json", path+"@"+version)
	if jerr := json.Unmarshal(out, &info); jerr != nil && err == nil {
		return info, fmt.Errorf("decode go mod download output: %w", jerr)
	}
	if info.Error != "" {
		return info, errors.New(info.Error)
	}
	return info, err
}

// writeWrapper writes the wrapper module: a go.mod requiring the component and
// a tools.go importing the commands so `go mod tidy` keeps what they need.
func writeWrapper(work string, c component, mod moduleInfo) error {
	replaces, err := wrapperReplaces(c, mod.GoMod)
	if err != nil {
		return err
	}
	var gomod bytes.Buffer
	fmt.Fprintf(&gomod, "module storefleet.local/build/%s\n\ngo 1.26\n\nrequire %s %s\n", c.Name, c.Module, c.Version)
	if len(replaces) > 0 {
		gomod.WriteString("\nreplace (\n")
		for _, r := range replaces {
			fmt.Fprintf(&gomod, "\t%s\n", r)
		}
		gomod.WriteString(")\n")
	}
	if err := os.WriteFile(filepath.Join(work, "go.mod"), gomod.Bytes(), 0o644); err != nil {
		return err
	}
	if c.Main != "" {
		return os.WriteFile(filepath.Join(work, "main.go"), []byte(c.Main), 0o644)
	}
	var tools bytes.Buffer
	tools.WriteString("//go:build tools\n\npackage tools\n\nimport (\n")
	for _, b := range c.Binaries {
		fmt.Fprintf(&tools, "\t_ %q\n", b.Package)
	}
	tools.WriteString(")\n")
	return os.WriteFile(filepath.Join(work, "tools.go"), tools.Bytes(), 0o644)
}

// wrapperReplaces turns the component's own replace directives, which Go
// ignores in a dependency, into ones that work from the wrapper: a local
// ./staging/src/<mod> (Kubernetes) becomes <mod> at the matching v0.x
// version, a local ./<sub> becomes <module>/<sub> at the component's version,
// and version pins are copied as they are.
func wrapperReplaces(c component, goModPath string) ([]string, error) {
	data, err := os.ReadFile(goModPath)
	if err != nil {
		return nil, err
	}
	f, err := modfile.Parse(goModPath, data, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range f.Replace {
		switch {
		case strings.HasPrefix(r.New.Path, "./staging/src/"):
			out = append(out, fmt.Sprintf("%s => %s %s", r.Old.Path, r.Old.Path, stagingVersion(c.Version)))
		case strings.HasPrefix(r.New.Path, "./") && strings.HasPrefix(r.Old.Path, c.Module+"/"):
			// A submodule of the component (its api module) at the same release.
			out = append(out, fmt.Sprintf("%s => %s %s", r.Old.Path, r.Old.Path, c.Version))
		case strings.HasPrefix(r.New.Path, "./") || strings.HasPrefix(r.New.Path, "../"):
			// Sibling modules of a monorepo resolve through their own requires;
			// other local paths are upstream guards (etcd's FORBIDDEN_DEPENDENCY).
		case r.New.Version != "":
			old := r.Old.Path
			if r.Old.Version != "" {
				old += " " + r.Old.Version
			}
			out = append(out, fmt.Sprintf("%s => %s %s", old, r.New.Path, r.New.Version))
		}
	}
	return append(out, c.Replace...), nil
}

// stagingVersion maps a Kubernetes release (v1.35.4) to its staging modules' version (v0.35.4).
func stagingVersion(kube string) string {
	return "v0" + strings.TrimPrefix(kube, "v1")
}

func goCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	return goCmdEnv(ctx, dir, []string{"CGO_ENABLED=0"}, args...)
}

func goCmdEnv(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, LastLines(stderr.String(), 30))
	}
	return out, nil
}

// LastLines is the last n lines of s, for error messages that quote a log.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// copyTree copies a file or a directory; module cache files are read-only, so
// the copies are made writable for the cache to be removable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
