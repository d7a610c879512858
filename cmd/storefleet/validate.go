package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/storefleet/storefleet/gitsync"
)

// runValidate checks stores repo manifests offline: the check a stores repo's
// own CI runs on pull requests.
func runValidate(args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: storefleet validate <dir|file.yaml>...\n\nChecks Store manifests with the Store CRD's schema and rules, the name rules, file name = store name, and duplicates. Prints file:line: message for each problem; exits 1 when there is any.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("name at least one directory or manifest file")
	}
	v, err := gitsync.NewValidator()
	if err != nil {
		return err
	}
	manifests, problems := v.ValidatePaths(fs.Args())
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s); %d valid manifest(s)", len(problems), len(manifests))
	}
	fmt.Printf("%d manifest(s) valid\n", len(manifests))
	return nil
}
