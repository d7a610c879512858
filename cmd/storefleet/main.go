// Command storefleet is the single storefleet binary. This file only
// dispatches subcommands; each subcommand wires packages together.
package main

import (
	"fmt"
	"os"
)

// version is stamped by `make build` (-X main.version=...).
var version = "dev"

type subcommand struct {
	name    string
	summary string
	run     func(args []string) error
}

func subcommands() []subcommand {
	return []subcommand{
		{"dev", "run the platform on an embedded local Kubernetes cluster", runDev},
		{"api", "run the Intent API (REST, OpenAPI at /openapi.yaml)", runAPI},
		{"operator", "run the operator that provisions Stores", runOperator},
		{"validate", "check stores repo manifests offline (for the stores repo's CI)", runValidate},
		{"openapi", "print the Intent API's OpenAPI document", runOpenAPI},
		{"version", "print the version", runVersion},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: storefleet <command> [flags]\n\ncommands:\n")
	for _, c := range subcommands() {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'storefleet <command> -h' for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	for _, c := range subcommands() {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "storefleet %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "storefleet: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}
