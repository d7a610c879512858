package gitsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Problem is one thing wrong with a manifest, located for a person to fix.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// Manifest is a Store read from a file of the stores repo.
type Manifest struct {
	File  string
	Store *v1alpha1.Store
	// Object is the manifest as the API server would receive it.
	Object map[string]any
}

// Validator checks Store manifests offline with the CRD's own schema: the
// OpenAPI rules, unknown fields and the CEL rules that need no old object.
type Validator struct {
	structural *structuralschema.Structural
	schema     validation.SchemaValidator
	cel        *cel.Validator
}

// NewValidator builds a Validator from the Store CRD compiled into the binary,
// so the check is exactly what the cluster enforces.
func NewValidator() (*Validator, error) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := sigsyaml.Unmarshal(v1alpha1.CRDManifest, &crd); err != nil {
		return nil, fmt.Errorf("store CRD: %w", err)
	}
	if len(crd.Spec.Versions) == 0 || crd.Spec.Versions[0].Schema == nil {
		return nil, errors.New("store CRD has no schema")
	}
	var internal apiextensionsinternal.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, &internal, nil); err != nil {
		return nil, fmt.Errorf("store CRD schema: %w", err)
	}
	structural, err := structuralschema.NewStructural(&internal)
	if err != nil {
		return nil, fmt.Errorf("store CRD schema: %w", err)
	}
	sv, _, err := validation.NewSchemaValidator(&internal)
	if err != nil {
		return nil, fmt.Errorf("store CRD schema: %w", err)
	}
	return &Validator{structural: structural, schema: sv, cel: cel.NewValidator(structural, true, celconfig.PerCallLimit)}, nil
}

// File checks one manifest file. file is its path in the repository (or on
// disk) and is used in the problems' locations; the file must be named after
// the store it declares.
func (v *Validator) File(file string, data []byte) (*Manifest, []Problem) {
	at := func(line int, format string, args ...any) []Problem {
		return []Problem{{File: file, Line: line, Message: fmt.Sprintf(format, args...)}}
	}
	base := path.Base(file)
	ext := path.Ext(base)
	if ext != ".yaml" && ext != ".yml" {
		return nil, at(0, "a store manifest must be a .yaml file")
	}
	doc, err := singleDocument(data)
	if err != nil {
		return nil, at(lineOf(err), "%s", yamlMessage(err))
	}
	if doc == nil {
		return nil, at(0, "the file is empty; a store manifest holds one Store")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, at(root.Line, "a store manifest must be a YAML mapping (a Store object)")
	}
	var obj map[string]any
	if err := doc.Decode(&obj); err != nil {
		return nil, at(lineOf(err), "%s", yamlMessage(err))
	}
	// Round-trip through JSON so numbers and maps have the types the API
	// server's validation expects: whole numbers int64 (as the API server
	// decodes them), not float64, or CEL rules on int-or-string fields fail.
	js, err := json.Marshal(obj)
	if err != nil {
		return nil, at(root.Line, "%v", err)
	}
	obj = nil
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		return nil, at(root.Line, "%v", err)
	}

	var problems []Problem
	add := func(fieldPath string, format string, args ...any) {
		problems = append(problems, Problem{File: file, Line: lineAt(root, fieldPath), Message: fmt.Sprintf(format, args...)})
	}
	if av, _ := obj["apiVersion"].(string); av != v1alpha1.GroupVersion.String() {
		add("apiVersion", "apiVersion must be %s, not %q", v1alpha1.GroupVersion.String(), av)
	}
	if k, _ := obj["kind"].(string); k != "Store" {
		add("kind", "kind must be Store, not %q", k)
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		add("metadata", "metadata.name is required")
	}
	for k := range meta {
		switch k {
		case "name", "labels", "annotations":
		case "namespace":
			add("metadata.namespace", "metadata.namespace must not be set: Store is cluster-scoped")
		default:
			add("metadata."+k, "metadata.%s is set by the cluster; remove it", k)
		}
	}
	if _, ok := obj["status"]; ok {
		add("status", "status is written by the operator; remove it")
	}
	if name != "" {
		// The name rules themselves are the CRD's CEL rules, reported below.
		if want := strings.TrimSuffix(base, ext); CheckName(name) == nil && want != name {
			add("metadata.name", "the file must be named after the store: %s.yaml declares store %q", want, name)
		}
	}
	for _, p := range pruning.PruneWithOptions(runtime.DeepCopyJSON(obj), v.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		add(p, "unknown field %q", p)
	}
	if _, ok := obj["spec"]; !ok {
		add("", "spec is required")
	} else {
		for _, e := range validation.ValidateCustomResource(nil, obj, v.schema) {
			add(e.Field, "%s", fieldMessage(e))
		}
		errs, _ := v.cel.Validate(context.Background(), nil, v.structural, obj, nil, celconfig.RuntimeCELCostBudget)
		for _, e := range errs {
			if e.Field == "<nil>" || e.Field == "" {
				// Root rules are the name rules.
				e.Field = "metadata.name"
			}
			add(e.Field, "%s", fieldMessage(e))
		}
	}
	problems = dedupe(problems)
	if len(problems) > 0 {
		return nil, problems
	}
	var st v1alpha1.Store
	if err := json.Unmarshal(js, &st); err != nil {
		return nil, at(root.Line, "%v", err)
	}
	return &Manifest{File: file, Store: &st, Object: obj}, nil
}

// Duplicates reports manifests that declare a store another file already
// declares (possible with .yaml and .yml, or across directories).
func Duplicates(ms []*Manifest) []Problem {
	first := map[string]string{}
	var problems []Problem
	for _, m := range ms {
		if f, ok := first[m.Store.Name]; ok {
			problems = append(problems, Problem{File: m.File, Message: fmt.Sprintf("store %q is already declared in %s", m.Store.Name, f)})
			continue
		}
		first[m.Store.Name] = m.File
	}
	return problems
}

func singleDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, &lineError{line: line, msg: "a store manifest holds exactly one Store; found a second YAML document"}
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return &doc, nil
}

type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return e.msg }

// lineOf extracts the line from a YAML error ("yaml: line 3: ...").
func lineOf(err error) int {
	var le *lineError
	if errors.As(err, &le) {
		return le.line
	}
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i+5:]
		if j := strings.IndexAny(rest, ":,"); j > 0 {
			if n, err := strconv.Atoi(rest[:j]); err == nil {
				return n
			}
		}
	}
	return 0
}

func yamlMessage(err error) string {
	var le *lineError
	if errors.As(err, &le) {
		return le.msg
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(msg, "line "); i == 0 {
		if j := strings.Index(msg, ": "); j > 0 {
			msg = msg[j+2:]
		}
	}
	return "invalid YAML: " + msg
}

// lineAt finds the line of a field path like "spec.values.plan" or
// "spec.items[2]" in the document, falling back to the closest parent.
func lineAt(root *yaml.Node, fieldPath string) int {
	n := root
	line := root.Line
	for _, seg := range splitPath(fieldPath) {
		next := child(n, seg)
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

func splitPath(p string) []string {
	var segs []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.Index(part, "[")
			if i < 0 {
				segs = append(segs, part)
				break
			}
			if i > 0 {
				segs = append(segs, part[:i])
			}
			j := strings.Index(part, "]")
			if j < i {
				break
			}
			segs = append(segs, part[i:j+1])
			part = part[j+1:]
		}
	}
	return segs
}

func child(n *yaml.Node, seg string) *yaml.Node {
	switch {
	case n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == seg {
				// Point at the key: that is where a person looks.
				if n.Content[i+1].Kind == yaml.ScalarNode {
					return n.Content[i+1]
				}
				k := *n.Content[i+1]
				k.Line = n.Content[i].Line
				return &k
			}
		}
	case n.Kind == yaml.SequenceNode && strings.HasPrefix(seg, "["):
		if i, err := strconv.Atoi(strings.Trim(seg, "[]")); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i]
		}
	}
	return nil
}

func fieldMessage(e *field.Error) string {
	msg := e.ErrorBody()
	if e.Type == field.ErrorTypeInvalid && e.Detail != "" {
		msg = e.Detail
	}
	if e.Field != "" && e.Field != "<nil>" {
		msg = e.Field + ": " + msg
	}
	return msg
}

func dedupe(ps []Problem) []Problem {
	var out []Problem
	for _, p := range ps {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b Problem) int { return a.Line - b.Line })
	return out
}

// NotAStorePlace is the problem of anything in the stores directory that is
// not a <name>.yaml file directly in it (or .keep): storefleet never reads
// it, and a Flux Kustomization over the same path would apply any YAML in it
// with the sync's identity.
const NotAStorePlace = "not a store manifest: the stores directory holds only <name>.yaml files (and .keep), no other files and no subdirectories; remove it"

// ValidatePaths checks the manifests named by paths: files, or stores
// directories whose *.yaml and *.yml files are manifests; anything else in
// such a directory, at any depth, is a problem (NotAStorePlace). It returns
// the valid manifests and every problem, duplicates across files included.
func (v *Validator) ValidatePaths(paths []string) ([]*Manifest, []Problem) {
	var manifests []*Manifest
	var problems []Problem
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			problems = append(problems, Problem{File: p, Message: errors.Unwrap(err).Error()})
			continue
		}
		files := []string{p}
		if info.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				problems = append(problems, Problem{File: p, Message: err.Error()})
				continue
			}
			files = files[:0]
			for _, e := range entries {
				full := filepath.Join(p, e.Name())
				switch ext := filepath.Ext(e.Name()); {
				case e.IsDir():
					problems = append(problems, strayFiles(full)...)
				case ext == ".yaml" || ext == ".yml":
					files = append(files, full)
				case e.Name() != KeepFile:
					problems = append(problems, Problem{File: filepath.ToSlash(full), Message: NotAStorePlace})
				}
			}
			if len(files) == 0 {
				problems = append(problems, Problem{File: p, Message: "no .yaml manifests in this directory"})
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				problems = append(problems, Problem{File: f, Message: err.Error()})
				continue
			}
			if len(data) > maxManifestBytes {
				problems = append(problems, Problem{File: f, Message: fmt.Sprintf("file is larger than %d bytes", maxManifestBytes)})
				continue
			}
			m, ps := v.File(filepath.ToSlash(f), data)
			problems = append(problems, ps...)
			if m != nil {
				manifests = append(manifests, m)
			}
		}
	}
	return manifests, append(problems, Duplicates(manifests)...)
}

// strayFiles reports every file below dir (a subdirectory of the stores
// directory) as out of place.
func strayFiles(dir string) []Problem {
	var out []Problem
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, Problem{File: filepath.ToSlash(p), Message: NotAStorePlace})
		}
		return nil
	})
	if err != nil {
		out = append(out, Problem{File: filepath.ToSlash(dir), Message: err.Error()})
	}
	if len(out) == 0 {
		out = append(out, Problem{File: filepath.ToSlash(dir) + "/", Message: NotAStorePlace})
	}
	return out
}
