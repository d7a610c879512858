package devcluster

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"time"
)

// Redis is a redis-server on loopback without persistence, for tests and
// `storefleet dev --redis`.
type Redis struct {
	Port int
	cmd  *exec.Cmd
}

// StartRedis starts Debian's redis-server on port (0: a free one) and
// waits until it accepts connections.
func StartRedis(port int) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed (Debian package redis-server): %w", err)
	}
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	r := &Redis{Port: port}
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return r, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Stop()
	return nil, fmt.Errorf("redis-server did not listen on %d within 10 s", port)
}

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Stop kills the server (an outage, for fault tests) and waits for it.
func (r *Redis) Stop() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}
