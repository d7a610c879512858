package imagebuild

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The subset of the OCI image layout and image spec this package writes and
// reads. Written by hand rather than imported: a dozen fields do not justify
// a new direct dependency.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
	// annotationRefName carries the full reference (localhost/x:tag): both
	// containerd's importer and buildah's oci-archive transport name the
	// image after it.
	annotationRefName = "org.opencontainers.image.ref.name"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type ociIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []descriptor `json:"manifests"`
}

type ociManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type imageConfig struct {
	Created      string          `json:"created,omitempty"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []history       `json:"history,omitempty"`
}

type containerConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   string `json:"created,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
}

// layer is a compressed layer blob in a temporary file.
type layer struct {
	path   string
	digest string // of the gzip blob
	diffID string // of the uncompressed tar
	size   int64
}

// writeLayer writes the tar stream produced by fill, gzip-compressed, to
// path, hashing both forms on the way: the manifest names the blob by the
// compressed digest, the config's rootfs by the uncompressed one.
func writeLayer(path string, fill func(w io.Writer) error) (layer, error) {
	f, err := os.Create(path)
	if err != nil {
		return layer{}, err
	}
	defer f.Close()
	blobHash, diffHash := sha256.New(), sha256.New()
	counter := &countWriter{}
	gz := gzip.NewWriter(io.MultiWriter(f, blobHash, counter))
	if err := fill(io.MultiWriter(gz, diffHash)); err != nil {
		return layer{}, err
	}
	if err := gz.Close(); err != nil {
		return layer{}, err
	}
	if err := f.Close(); err != nil {
		return layer{}, err
	}
	return layer{
		path:   path,
		digest: "sha256:" + hex.EncodeToString(blobHash.Sum(nil)),
		diffID: "sha256:" + hex.EncodeToString(diffHash.Sum(nil)),
		size:   counter.n,
	}, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// newConfig is the config of a single-platform image for this host.
func newConfig(c containerConfig, createdBy string, layers []layer) imageConfig {
	now := time.Now().UTC().Format(time.RFC3339)
	cfg := imageConfig{
		Created:      now,
		Architecture: runtime.GOARCH, // Go and OCI share the names (amd64, arm64)
		OS:           "linux",
		Config:       c,
		RootFS:       rootFS{Type: "layers"},
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, history{Created: now, CreatedBy: createdBy})
	}
	return cfg
}

// writeArchive writes an oci-archive (a tar of an OCI image layout) holding
// one image named ref to dst, through a temporary file renamed into place, and
// returns the manifest digest.
func writeArchive(dst, ref string, cfg imageConfig, layers []layer) (string, error) {
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	m := ociManifest{SchemaVersion: 2, MediaType: mediaTypeManifest, Config: blobDescriptor(mediaTypeConfig, cfgJSON)}
	for _, l := range layers {
		m.Layers = append(m.Layers, descriptor{MediaType: mediaTypeLayerGz, Digest: l.digest, Size: l.size})
	}
	mJSON, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	mDesc := blobDescriptor(mediaTypeManifest, mJSON)
	mDesc.Annotations = map[string]string{annotationRefName: ref}
	idxJSON, err := json.Marshal(ociIndex{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{mDesc}})
	if err != nil {
		return "", err
	}

	err = writeAtomic(dst, func(f *os.File) error {
		tw := tar.NewWriter(f)
		for _, d := range []string{"blobs/", "blobs/sha256/"} {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}); err != nil {
				return err
			}
		}
		for _, l := range layers {
			if err := tarFile(tw, blobPath(l.digest), l.path); err != nil {
				return err
			}
		}
		entries := []struct {
			name string
			data []byte
		}{
			{blobPath(m.Config.Digest), cfgJSON},
			{blobPath(mDesc.Digest), mJSON},
			{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
			{"index.json", idxJSON},
		}
		for _, e := range entries {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
				return err
			}
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		}
		return tw.Close()
	})
	return mDesc.Digest, err
}

func blobDescriptor(mediaType string, data []byte) descriptor {
	sum := sha256.Sum256(data)
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

func blobPath(digest string) string { return "blobs/" + strings.Replace(digest, ":", "/", 1) }

func tarFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: fi.Size()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// writeAtomic writes dst through a temporary file in the same directory and
// renames it into place, so a reader never sees a half-written file and a
// killed build leaves no file under the final name.
func writeAtomic(dst string, write func(f *os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}

// archiveInfo is what an image archive says about its image.
type archiveInfo struct {
	Ref      string
	Digest   string
	Manifest ociManifest
	Config   imageConfig
}

// readArchive reads the name, manifest and config of the single image of an
// oci-archive, as written by writeArchive or `buildah push oci-archive:`.
func readArchive(path string) (archiveInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return archiveInfo{}, err
	}
	defer f.Close()
	// JSON blobs are small and come in any order: keep those, skip layers.
	small := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return archiveInfo{}, fmt.Errorf("read %s: %w", path, err)
		}
		if h.Typeflag != tar.TypeReg || h.Size > 1<<20 {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return archiveInfo{}, fmt.Errorf("read %s: %w", path, err)
		}
		small[strings.TrimPrefix(h.Name, "./")] = data
	}
	var idx ociIndex
	if err := json.Unmarshal(small["index.json"], &idx); err != nil {
		return archiveInfo{}, fmt.Errorf("%s: index.json: %w", path, err)
	}
	if len(idx.Manifests) != 1 {
		return archiveInfo{}, fmt.Errorf("%s: want one image in index.json, found %d", path, len(idx.Manifests))
	}
	info := archiveInfo{Ref: idx.Manifests[0].Annotations[annotationRefName], Digest: idx.Manifests[0].Digest}
	if err := json.Unmarshal(small[blobPath(info.Digest)], &info.Manifest); err != nil {
		return archiveInfo{}, fmt.Errorf("%s: manifest %s: %w", path, info.Digest, err)
	}
	if err := json.Unmarshal(small[blobPath(info.Manifest.Config.Digest)], &info.Config); err != nil {
		return archiveInfo{}, fmt.Errorf("%s: config %s: %w", path, info.Manifest.Config.Digest, err)
	}
	return info, nil
}
