package main_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/test/localcluster"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "storefleet-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "storefleet")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build storefleet: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestUsageErrorsArePrecise(t *testing.T) {
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
// would: it prints how to reach the cluster, a Store applied there becomes
// Ready, and Ctrl-C stops every process it started.
func TestDevRunsThePlatformAndStopsCleanly(t *testing.T) {
	workdir := t.TempDir()
	cmd := exec.Command(binary, "dev", "--workdir", workdir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	kubeconfigLine := regexp.MustCompile(`export KUBECONFIG=(\S+)`)
	var kubeconfig string
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("storefleet dev exited before it was ready")
			}
			if m := kubeconfigLine.FindStringSubmatch(l); m != nil {
				kubeconfig = m[1]
			}
			if strings.Contains(l, "Press Ctrl-C to stop everything") {
				break wait
			}
		case <-deadline:
			t.Fatal("storefleet dev did not print its instructions within 2 minutes")
		}
	}
	if kubeconfig != filepath.Join(workdir, "kubeconfig") {
		t.Fatalf("kubeconfig %q, want it in the workdir", kubeconfig)
	}
	go func() {
		for range lines {
		}
	}()

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: localcluster.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{Name: "demo"},
		Spec:       v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "alice"},
	}
	if err := c.Create(ctx, store); err != nil {
		t.Fatal(err)
	}
	localcluster.Eventually(t, 60*time.Second, "the demo store Ready", func() (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(store), store)
		return err == nil && store.Status.Phase == v1alpha1.PhaseReady, err
	})

	pids := localcluster.WorkdirPIDs(workdir)
	if len(pids) < 5 {
		t.Fatalf("expected the control plane's pid files in the workdir, found %d", len(pids))
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("storefleet dev exited with %v after Ctrl-C", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("storefleet dev did not stop within 60 s of Ctrl-C")
	}
	for _, pid := range pids {
		if localcluster.Alive(pid) {
			t.Errorf("process %d still running after storefleet dev stopped", pid)
		}
	}
}
