package devcluster

import (
	"net"
	"strconv"
	"testing"
)

// A port handed to a server that binds it later must not be one the kernel
// may give an outgoing connection meanwhile (a dev whose operator found its
// metrics port taken stopped, and the dashboard test with it).
func TestFreePortIsOutsideTheEphemeralRange(t *testing.T) {
	start := ephemeralPortsStart()
	if start < 21000 {
		t.Fatalf("this machine's ephemeral ports start at %d; the test needs the usual range", start)
	}
	seen := map[int]bool{}
	for range 50 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < 20000 || port >= min(30000, start) {
			t.Fatalf("FreePort gave %d: not in [20000, %d)", port, min(30000, start))
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("FreePort gave %d, which cannot be bound: %v", port, err)
		}
		l.Close()
		seen[port] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 calls gave only %d different ports: two starting servers would collide", len(seen))
	}
}

// Ports not yet bound are never handed out twice in a process: the dev
// platform draws all of its ports before it binds them (its operator once
// found its Git webhook's port taken and stopped).
func TestFreePortHandsOutEachPortOnce(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("FreePort gave %d twice", port)
		}
		seen[port] = true
	}
}
