package main

import (
	"flag"
	"io"
	"testing"
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
