// Package store_test runs real MedusaJS stores end to end on the local
// cluster's real node, the way a newcomer gets them: `storefleet dev` with
// its real node, a store asked for through the Intent API, and the shop
// checked through its ingress as a shopper would use it.
package store_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/storefleet/storefleet/test/testenv"
)

var dev *testenv.Dev

func TestMain(m *testing.M) { testenv.ExitMain(run(m)) }

func run(m *testing.M) (int, error) {
	workdir, binary, err := testenv.TestBinary("../..", "storefleet-store-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(workdir)
	// dev runs from the repository's root, where the store images' sources are.
	if err := os.Chdir("../.."); err != nil {
		return 0, err
	}
	if dev, err = testenv.StartDev(binary, workdir+"/dev", "--real-node=true", "--ingress-addr=127.0.0.1:0"); err != nil {
		return 0, err
	}
	if dev.IngressURL == "" {
		dev.Stop()
		return 0, fmt.Errorf("storefleet dev printed no real node ingress:\n%s", dev.Output())
	}
	code := m.Run()
	if err := dev.Stop(); err != nil {
		return 0, err
	}
	return code, nil
}
