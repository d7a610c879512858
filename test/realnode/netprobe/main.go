// Command netprobe is the real-node tests' workload: an HTTP server that
// names itself, so a test checks the application's reply and not a TCP
// connect (egress here goes through a proxy that accepts any connection),
// an HTTP client, a memory hog for the OOM test and a failing start for the
// crash-loop test.
//
//	netprobe serve NAME PORT...   answer "netprobe NAME" on every port
//	netprobe get URL              print the reply; exit 1 when there is none
//	netprobe alloc MIB            touch MIB MiB of memory, then sleep
//	netprobe fail CODE            print why, exit with CODE
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: netprobe serve NAME PORT... | get URL | alloc MIB | fail CODE")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		name := os.Args[2]
		fmt.Printf("serving %s on %v\n", name, os.Args[3:])
		for _, port := range os.Args[3:] {
			go func() {
				err := http.ListenAndServe(":"+port, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprintf(w, "netprobe %s\n", name)
				}))
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}()
		}
		// PID 1 in a container: exit on SIGTERM instead of waiting for the kill.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
	case "get":
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(os.Args[2])
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		fmt.Print(string(body))
	case "alloc":
		mib, _ := strconv.Atoi(os.Args[2])
		var blocks [][]byte
		for i := 0; i < mib; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = 1
			}
			blocks = append(blocks, b)
		}
		fmt.Printf("allocated %d MiB\n", len(blocks))
		time.Sleep(time.Hour)
	case "fail":
		code, _ := strconv.Atoi(os.Args[2])
		fmt.Fprintln(os.Stderr, "netprobe: failing on purpose with exit code", code)
		os.Exit(code)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
