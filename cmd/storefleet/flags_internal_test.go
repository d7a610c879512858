package main

import (
	"flag"
	"io"
	"reflect"
	"testing"
	"time"
)

// parseAPIFlags parses args as `storefleet api` (dev false) or
// `storefleet dev` (dev true) read the API's flags.
func parseAPIFlags(t *testing.T, dev bool, args ...string) (apiFlags, *flag.FlagSet) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f apiFlags
	f.register(fs)
	if dev {
		devAPIDefaults(fs, &f)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f, fs
}

// TestDevRateLimitFitsOnePersonsScript: `storefleet dev` must not throttle
// a newcomer's first script (ten mutations a minute did), while `storefleet
// api` keeps the production default, and both honour --rate-limit.
func TestDevRateLimitFitsOnePersonsScript(t *testing.T) {
	dev, fs := parseAPIFlags(t, true)
	if dev.rateLimit < 300 {
		t.Errorf("storefleet dev allows %d mutations a minute; a script creating, retrying and deleting a few stores in a loop needs hundreds", dev.rateLimit)
	}
	if got := fs.Lookup("rate-limit").DefValue; got != "600" {
		t.Errorf("storefleet dev --help shows the rate limit default %s, want the one it uses (600)", got)
	}
	if api, _ := parseAPIFlags(t, false); api.rateLimit != 10 {
		t.Errorf("storefleet api allows %d mutations a minute by default, want 10", api.rateLimit)
	}
	if set, _ := parseAPIFlags(t, true, "--rate-limit", "20"); set.rateLimit != 20 {
		t.Errorf("storefleet dev --rate-limit 20 gave %d", set.rateLimit)
	}
}

// TestOperatorCommandArgsRoundTrip: dev runs its operator as `storefleet
// operator <commandArgs>`; every setting dev makes must arrive in that
// process, or the restarted operator would provision stores differently.
func TestOperatorCommandArgsRoundTrip(t *testing.T) {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var want operatorFlags
	want.registerCommand(fs)
	// What storefleet dev sets, each away from its default.
	want.kubeconfig = "/tmp/cluster/kubeconfig"
	want.realNode = true
	want.ingressPort = 8443
	want.metricsAddr = "127.0.0.1:39001"
	want.healthAddr = "0"
	want.fluxNamespace = "storefleet-system"
	want.opts.CredentialsNamespace = "storefleet-system"
	want.chartAddr = "127.0.0.1:39002"
	want.chartURL = "http://127.0.0.1:39002"
	want.redisURL = "redis://127.0.0.1:6390/0"
	want.gitWebhookAddr = "127.0.0.1:39003"
	want.gitWebhookSecret = "/tmp/cluster/git-webhook-secret"
	want.gitInterval = 30 * time.Second
	want.git.url = "http://127.0.0.1:39004/stores.git"
	want.git.forge = "gitea"
	want.git.dashboardURL = "http://127.0.0.1:8080"
	want.opts.DriftInterval = 90 * time.Second
	want.kubeQPS = 55.5
	want.leaderElect = false

	args := want.commandArgs()
	got, parsed := operatorFlags{}, flag.NewFlagSet("operator", flag.ContinueOnError)
	got.registerCommand(parsed)
	if err := parsed.Parse(args); err != nil {
		t.Fatalf("storefleet operator %v: %v", args, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("storefleet operator %v\nparsed %+v\nwant   %+v", args, got, want)
	}
	var defaults operatorFlags
	defaults.registerCommand(flag.NewFlagSet("defaults", flag.ContinueOnError))
	if args := defaults.commandArgs(); len(args) != 0 {
		t.Errorf("the default settings gave the command line %v, want none", args)
	}
}
