package main_test

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/test/testenv"
)

var (
	built     sync.Once
	binaryDir string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryDir != "" {
		os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// storefleet builds the binary the tests run, on the first call.
func storefleet(t testing.TB) string {
	t.Helper()
	built.Do(func() {
		if binaryDir, buildErr = os.MkdirTemp("", "storefleet-cli-test-"); buildErr == nil {
			binary, buildErr = testenv.BuildStorefleet("../..", binaryDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestUsageErrorsArePrecise(t *testing.T) {
	binary := storefleet(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{args: nil, code: 2, want: "usage: storefleet <command>"},
		{args: []string{"frobnicate"}, code: 2, want: `storefleet: unknown command "frobnicate"`},
		{args: []string{"operator", "--workers", "many"}, code: 1, want: `invalid value "many" for flag -workers`},
		{args: []string{"operator", "--environment", "mars", "--kubeconfig", "/nonexistent"}, code: 1, want: `storefleet operator: unknown environment "mars" (have [local prod])`},
		{args: []string{"version"}, code: 0, want: "storefleet "},
		{args: []string{"api", "--auth", "magic", "--kubeconfig", "/nonexistent"}, code: 1, want: `storefleet api: --auth must be header or jwt, not "magic"`},
		{args: []string{"api", "--kubeconfig", "/nonexistent"}, code: 1, want: "storefleet api: --auth=header needs --trusted-proxies"},
		{args: []string{"api", "--trusted-proxies", "10.0.0.0/99", "--kubeconfig", "/nonexistent"}, code: 1, want: `storefleet api: --trusted-proxies: trusted proxy "10.0.0.0/99" is not a CIDR`},
		{args: []string{"openapi"}, code: 0, want: "openapi: 3.1.0"},
		{args: []string{"dev", "--no-such-flag"}, code: 1, want: "storefleet dev: flag provided but not defined: -no-such-flag"},
		{args: []string{"operator", "--delivery", "argo", "--kubeconfig", "/nonexistent"}, code: 1, want: `storefleet operator: --delivery must be auto, flux or helm, not "argo"`},
		{args: []string{"operator", "--flux-source", "Bucket/x/y", "--kubeconfig", "/nonexistent"}, code: 1, want: "--flux-source kind must be HelmRepository, GitRepository or OCIRepository"},
		{args: []string{"api", "--trusted-proxies", "127.0.0.1/32", "--intent", "git", "--kubeconfig", "/nonexistent"}, code: 1, want: "storefleet api: --intent=git needs --git-url (the stores repo)"},
		{args: []string{"api", "--trusted-proxies", "127.0.0.1/32", "--intent", "git", "--git-url", "https://example.com/s.git", "--git-mode", "pull-request", "--kubeconfig", "/nonexistent"}, code: 1, want: "--git-mode=pull-request needs --forge-kind"},
		{args: []string{"api", "--trusted-proxies", "127.0.0.1/32", "--intent", "svn", "--kubeconfig", "/nonexistent"}, code: 1, want: `--intent must be kubernetes or git, not "svn"`},
		{args: []string{"api", "--trusted-proxies", "127.0.0.1/32", "--plans-by-group", "pro=huge", "--kubeconfig", "/nonexistent"}, code: 1, want: `storefleet api: --plans-by-group: group "pro": unknown plan "huge" (plans: small, medium, large)`},
		{args: []string{"validate"}, code: 1, want: "storefleet validate: name at least one directory or manifest file"},
		{args: []string{"validate", "/nonexistent/stores"}, code: 1, want: "/nonexistent/stores: no such file or directory"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := exec.Command(binary, tc.args...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d, output %q; want exit %d containing %q", code, out, tc.code, tc.want)
			}
		})
	}
}

// TestDevRunsThePlatformAndStopsCleanly runs `storefleet dev` as a person
// would: it prints how to reach the cluster and the API, a store asked for
// through the API becomes Ready (seen through the API), deleting it removes
// it with its namespace, and Ctrl-C stops every process it started.
func TestDevRunsThePlatformAndStopsCleanly(t *testing.T) {
	if os.Getenv(testenv.UnitEnv) != "" {
		// storefleet dev starts the local cluster itself.
		t.Skip("cluster test: not part of make unit")
	}
	for _, c := range []struct {
		name string
		args []string
		mode string
	}{
		{name: "helm", mode: "helm"},
		// With --flux the store is a Flux HelmRelease installed by helm-controller.
		{name: "flux", args: []string{"--flux"}, mode: "flux"},
		// With --redis the live events go through a redis-server it starts.
		{name: "redis", args: []string{"--redis"}, mode: "helm"},
		// With --kubeconfig it runs the operator and API against that cluster.
		{name: "existing-cluster", args: []string{"--kubeconfig"}, mode: "helm"},
		// With --intent git the API commits to dev's stores repo, whose push
		// webhook makes the operator's reader sync it.
		{name: "git", args: []string{"--intent", "git"}, mode: "helm"},
	} {
		t.Run(c.name, func(t *testing.T) { testDev(t, c.args, c.mode) })
	}
}

func testDev(t *testing.T, args []string, mode string) {
	workdir := t.TempDir()
	wantKubeconfig := filepath.Join(workdir, "kubeconfig")
	external := len(args) > 0 && args[0] == "--kubeconfig"
	if external {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		existing, err := devcluster.Start(ctx, devcluster.Options{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer existing.Stop()
		wantKubeconfig = existing.Kubeconfig
		args = []string{"--kubeconfig", existing.Kubeconfig}
	}
	dev, err := testenv.StartDev(storefleet(t), workdir, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Kill()
	apiURL, kubeconfig := dev.URL, dev.Kubeconfig
	if kubeconfig != wantKubeconfig {
		t.Fatalf("kubeconfig %q, want it in the workdir", kubeconfig)
	}
	if !strings.Contains(dev.Output(), "Intent API:  "+apiURL+"/api/v1/stores") {
		t.Errorf("the instructions do not name the Intent API at %s", apiURL)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: devcluster.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, apiURL+path, strings.NewReader(body))
		req.Header.Set("X-User-Id", "alice")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	viaGit := slices.Contains(args, "git")
	wantCreate, wantChannel := http.StatusCreated, v1alpha1.ChannelAPI
	if viaGit {
		wantCreate, wantChannel = http.StatusAccepted, v1alpha1.ChannelGit
	}
	if code, body := call(http.MethodPost, "/api/v1/stores", `{"name":"demo","engine":"medusa"}`); code != wantCreate {
		t.Fatalf("create through the API: %d %v", code, body)
	}
	var got map[string]any
	testenv.Eventually(t, 60*time.Second, "the demo store Ready through the API", func() (bool, error) {
		code, body := call(http.MethodGet, "/api/v1/stores/demo", "")
		got = body
		return code == http.StatusOK && body["phase"] == "Ready", nil
	}, func() string { return fmt.Sprintf("last GET: %v", got) })
	if urls, _ := got["urls"].(map[string]any); got["ready"] != true || urls["storefront"] != "http://demo.localtest.me" || len(got["activity"].([]any)) < 5 {
		t.Errorf("ready store through the API: %v", got)
	}
	if release, _ := got["release"].(map[string]any); release["mode"] != mode {
		t.Errorf("release %v, want mode %s", got["release"], mode)
	}
	// The live event stream answers with the store's snapshot.
	streamReq, _ := http.NewRequest(http.MethodGet, apiURL+"/api/v1/stores/demo/events", nil)
	streamReq.Header.Set("X-User-Id", "alice")
	streamResp, err := http.DefaultClient.Do(streamReq)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := bufio.NewReader(streamResp.Body).ReadString('\n')
	streamResp.Body.Close()
	if streamResp.StatusCode != http.StatusOK || first != "event: snapshot\n" {
		t.Errorf("event stream: %d, first line %q", streamResp.StatusCode, first)
	}
	// The Store object is the record, for kubectl too.
	var store v1alpha1.Store
	if err := c.Get(ctx, client.ObjectKey{Name: "demo"}, &store); err != nil || store.Spec.Owner != "alice" || store.Status.Source == nil || store.Status.Source.Channel != wantChannel {
		t.Errorf("store object: %v %+v", err, store.Status.Source)
	}
	if code, body := call(http.MethodDelete, "/api/v1/stores/demo", ""); code != http.StatusAccepted || body["phase"] != "Deleting" {
		t.Fatalf("delete through the API: %d %v", code, body)
	}
	testenv.Eventually(t, 60*time.Second, "the demo store and its namespace gone", func() (bool, error) {
		code, _ := call(http.MethodGet, "/api/v1/stores/demo", "")
		var ns corev1.Namespace
		err := c.Get(ctx, client.ObjectKey{Name: "store-demo"}, &ns)
		return code == http.StatusNotFound && apierrors.IsNotFound(err), nil
	})

	pids := devcluster.WorkdirPIDs(workdir)
	if len(pids) < 5 && !external {
		t.Fatalf("expected the control plane's pid files in the workdir, found %d", len(pids))
	}
	if err := dev.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if devcluster.Alive(pid) {
			t.Errorf("process %d still running after storefleet dev stopped", pid)
		}
	}
}

// TestMakeBuildIsStatic: the binary `make build` produces (and the Dockerfile
// copies onto a distroless static base) has no dynamic loader or libraries.
func TestMakeBuildIsStatic(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "storefleet")
	if out, err := exec.Command("make", "-C", "../..", "build", "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("bin/storefleet asks for a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("bin/storefleet needs shared libraries %v", libs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "storefleet ") {
		t.Fatalf("version: %v %s", err, out)
	}
}

// TestDockerfileShipsTheTestedBinary: the image cannot be built here (no
// Docker engine), so its definition is checked against what the tests run:
// `make binary` (the Go half of `make build`, whose output
// TestMakeBuildIsStatic checks) with the dashboard built by `npm run build`,
// on a static distroless base as a non-root user.
func TestDockerfileShipsTheTestedBinary(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(data)
	for _, want := range []string{
		"RUN npm ci", "RUN npm run build", "COPY --from=web /src/web/dist/app web/dist/app",
		"RUN make binary", "FROM gcr.io/distroless/static-debian12:nonroot", "USER 65532:65532",
		"COPY --from=build /src/bin/storefleet /storefleet",
	} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	out, err := exec.Command("make", "-C", "../..", "-n", "build").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "CGO_ENABLED=0 go build -trimpath") {
		t.Errorf("make build does not run the static go build of make binary:\n%s", out)
	}
}
