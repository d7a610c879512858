// Package imagebuild builds the container images of the real worker node
// locally and imports them into its containerd, because no container registry
// is reachable here: only the Debian mirror, the npm registry and the Go
// module proxy are.
//
// Three kinds of image are built, each cached under Builder.Dir by a hash of
// its inputs so an unchanged image is never rebuilt:
//
//   - Base: Debian bookworm from debootstrap --variant=minbase, named
//     localhost/storefleet/debian:bookworm, the local stand-in for
//     docker.io/library/debian:bookworm-slim.
//   - Pause: the sandbox image localhost/pause:3.10, a static build of
//     Kubernetes' pause.c.
//   - Build: any Containerfile built with buildah on top of the base, which it
//     receives as the BASE_IMAGE build argument.
//
// Every image is written as an OCI archive that `ctr images import` accepts
// with its full name; Builder.Import loads it into containerd's k8s.io
// namespace, where the CRI plugin marks it managed.
package imagebuild

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Version is the version of the build recipes. It is part of every cache key:
// bump it when a change of this package changes what an image contains, so
// images built by the old code are rebuilt.
const Version = "1"

// BaseName and BaseTag name the Debian base image. Containerfiles refer to it
// through `ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim` and
// `FROM ${BASE_IMAGE}`, so the same file builds against the official image
// elsewhere.
const (
	BaseName = "localhost/storefleet/debian"
	BaseTag  = "bookworm"
)

// PauseName and PauseTag name the sandbox image; containerd's CRI
// sandbox_image must be set to this reference since it cannot be pulled.
const (
	PauseName = "localhost/pause"
	PauseTag  = "3.10"
)

// BaseImageArg is the build argument through which Build passes the base
// image reference to a Containerfile.
const BaseImageArg = "BASE_IMAGE"

// KeyLabel is the image label holding the cache key. Build uses it to tell
// whether the copy of a base image in buildah's storage is the one it expects.
const KeyLabel = "dev.storefleet.imagebuild.key"

// Builder builds images into a cache directory. The zero value is not usable:
// Dir must be set, usually to DefaultDir(). Builds of one Dir are serialized
// across processes by a lock file, since they share buildah's storage and
// there are only two cores to share anyway.
type Builder struct {
	// Dir is the cache root. It holds the image archives, buildah's storage,
	// temporary rootfs trees and the build logs; nothing is written to
	// /var/lib/containers.
	Dir string
	// Log receives one progress line per step: what is built and why, or
	// that it is cached. Nil discards them.
	Log io.Writer
	// Mirror is the Debian mirror for debootstrap and for apt inside the
	// images. Empty means the one the host's apt sources use, else
	// http://deb.debian.org/debian.
	Mirror string

	mu sync.Mutex
	// runs counts the tools run per program name; tests use it to prove a
	// cache hit ran no build tool.
	runs map[string]int
}

// Image is a built image archive.
type Image struct {
	// Name is the repository, e.g. localhost/storefleet/postgres.
	Name string
	// Tag is the image tag, e.g. 15.
	Tag string
	// Archive is the path of the OCI image archive (an oci-archive tarball
	// whose index names the image Name:Tag).
	Archive string
	// Digest is the digest of the image manifest, as containerd reports it
	// after an import.
	Digest string
	// Key is the hash of the image's inputs under which it is cached.
	Key string
	// Cached is true when the image came from the cache without a build.
	Cached bool `json:"-"`
}

// Ref returns the image reference Name:Tag.
func (i Image) Ref() string { return i.Name + ":" + i.Tag }

// DefaultDir is the versioned image cache: images-v1 under $STOREFLEET_CACHE,
// else $XDG_CACHE_HOME/storefleet, else ~/.cache/storefleet (the same root as
// the control-plane binaries). A change of the cache layout gets a new
// directory rather than a migration.
func DefaultDir() string {
	return filepath.Join(CacheRoot(), "images-v1")
}

// CacheRoot is where storefleet keeps what it builds outside the clone
// (images here, the local cluster's binaries in internal/devcluster):
// $STOREFLEET_CACHE, else $XDG_CACHE_HOME/storefleet, else ~/.cache/storefleet.
func CacheRoot() string {
	if d := os.Getenv("STOREFLEET_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "storefleet")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "storefleet")
	}
	return filepath.Join(os.TempDir(), "storefleet-cache")
}

// tool is a requirement of a build step: a program on PATH (or a file) and
// the Debian package that ships it, or root.
type tool struct {
	program string
	file    string // a file instead of a program
	pkg     string
	root    bool // euid 0 instead of a program
}

var (
	// Debootstrap mounts /proc in its target and creates device nodes.
	asRoot = tool{root: true}
	nice   = tool{program: "nice", pkg: "coreutils"}

	toolsBase = []tool{asRoot, nice,
		{program: "debootstrap", pkg: "debootstrap"},
		{program: "tar", pkg: "tar"},
		{file: debianKeyring, pkg: "debian-archive-keyring"},
	}
	toolsPause = []tool{nice,
		{program: "gcc", pkg: "gcc"},
		{program: "strip", pkg: "binutils"},
		// gcc -static links glibc's static archive, which gcc does not
		// depend on.
		{file: "libc.a", pkg: "libc6-dev"},
		{program: "go", pkg: "golang (or put a Go toolchain on PATH)"},
	}
	// Buildah's chroot isolation needs root; the private mount namespace
	// (see cmdSpec.hideVarLib) needs sh and mount.
	toolsBuild = []tool{asRoot, nice,
		{program: "buildah", pkg: "buildah"},
		{program: "sh", pkg: "dash"},
		{program: "mount", pkg: "mount"},
	}
)

// CheckHost reports what this host lacks to build every image: root, or a
// tool, named with the Debian package to install. `make images` calls it
// first so a missing package fails in a second, not after debootstrap.
func CheckHost() error {
	var all []tool
	for _, ts := range [][]tool{toolsBase, toolsPause, toolsBuild} {
		all = append(all, ts...)
	}
	return checkTools(all...)
}

func checkTools(tools ...tool) error {
	var problems, pkgs []string
	seen := map[tool]bool{}
	for _, t := range tools {
		if seen[t] {
			continue
		}
		seen[t] = true
		switch {
		case t.root:
			if os.Geteuid() != 0 {
				problems = append(problems, "not running as root (debootstrap and buildah's chroot isolation need it)")
			}
		case t.file == "libc.a":
			gcc, err := lookPath("gcc")
			if err != nil {
				continue // reported as gcc missing
			}
			out, _ := exec.Command(gcc, "-print-file-name=libc.a").Output()
			if p := strings.TrimSpace(string(out)); !filepath.IsAbs(p) {
				problems = append(problems, "static libc (libc.a) not found")
				pkgs = append(pkgs, t.pkg)
			}
		case t.file != "":
			if _, err := os.Stat(t.file); err != nil {
				problems = append(problems, t.file+" not found")
				pkgs = append(pkgs, t.pkg)
			}
		default:
			if _, err := lookPath(t.program); err != nil {
				problems = append(problems, t.program+" not found")
				pkgs = append(pkgs, t.pkg)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	msg := "imagebuild: " + strings.Join(problems, "; ")
	if len(pkgs) > 0 {
		msg += "; install the Debian packages: apt-get install " + strings.Join(pkgs, " ")
	}
	return errors.New(msg)
}

func (b *Builder) logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, format+"\n", args...)
	}
}
