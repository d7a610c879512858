package realnode

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// hostState is what the host looked like before the node started, so the
// teardown removes exactly what the node added. It is saved in the node's
// directory (host-before.json) for a later cleanup of a crashed run.
type hostState struct {
	Sysctls   map[string]string `json:"sysctls"`
	Paths     map[string]bool   `json:"paths"`
	NFTTables []string          `json:"nftTables"`
}

func captureHost() hostState {
	return hostState{Sysctls: readSysctls(), Paths: existingPaths(outsidePaths), NFTTables: nftTables()}
}

func nftTables() []string {
	out, err := run("nft", "list", "tables")
	if err != nil {
		return nil
	}
	var tables []string
	for _, line := range strings.Split(out, "\n") {
		if t := strings.TrimSpace(line); t != "" {
			tables = append(tables, t)
		}
	}
	return tables
}

// Chains and sets the node's components create in the host's netfilter.
func isNodeChain(name string) bool {
	for _, p := range []string{"KUBE-", "CNI-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func isKubeRouterSet(name string) bool {
	name = strings.TrimPrefix(name, "inet6:")
	return strings.HasPrefix(name, "KUBE-SRC-") || strings.HasPrefix(name, "KUBE-DST-")
}

// cleanNetfilter removes the rules, chains and sets of kube-router, the
// kubelet and the CNI plugins. kube-router leaves its policy chains and
// ipsets behind on SIGTERM (stale policies would stay enforced), and a CNI
// DEL that never ran leaves its NAT chains.
func cleanNetfilter() []error {
	var errs []error
	for _, fam := range families {
		for _, table := range tables {
			chains, jumps := nodeRules(fam, table)
			for _, rule := range jumps {
				if _, err := run(fam, append([]string{"-t", table, "-D"}, rule...)...); err != nil {
					errs = append(errs, err)
				}
			}
			for _, c := range chains {
				_, _ = run(fam, "-t", table, "-F", c)
			}
			for _, c := range chains {
				if _, err := run(fam, "-t", table, "-X", c); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for _, set := range kubeRouterSets() {
		if _, err := run("ipset", "destroy", set); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// The iptables families and tables the node's components write to.
var (
	families = []string{"iptables", "ip6tables"}
	tables   = []string{"filter", "nat", "mangle"}
)

// nodeRules lists, in one table, the chains of the node's components and the
// rules of base chains (INPUT, FORWARD, POSTROUTING...) that jump into them,
// each as the arguments that follow -A.
func nodeRules(fam, table string) (chains []string, jumps [][]string) {
	rules, err := run(fam, "-t", table, "-S")
	if err != nil {
		return nil, nil
	}
	sc := bufio.NewScanner(strings.NewReader(rules))
	for sc.Scan() {
		f := ruleFields(sc.Text())
		switch {
		case len(f) >= 2 && f[0] == "-N" && isNodeChain(f[1]):
			chains = append(chains, f[1])
		case len(f) >= 2 && f[0] == "-A" && !isNodeChain(f[1]) && jumpsToNodeChain(f):
			jumps = append(jumps, f[1:])
		}
	}
	return chains, jumps
}

// kubeRouterSets lists kube-router's ipsets.
func kubeRouterSets() []string {
	out, err := run("ipset", "list", "-n")
	if err != nil {
		return nil
	}
	var sets []string
	for _, s := range strings.Fields(out) {
		if isKubeRouterSet(s) {
			sets = append(sets, s)
		}
	}
	return sets
}

func jumpsToNodeChain(rule []string) bool {
	for i := 0; i+1 < len(rule); i++ {
		if (rule[i] == "-j" || rule[i] == "-g") && isNodeChain(rule[i+1]) {
			return true
		}
	}
	return false
}

// ruleFields splits a line of `iptables -S` into arguments: words, with
// double-quoted comments ("kube-router netpol - ...") kept whole. The
// arguments go to exec directly, not through a shell.
func ruleFields(line string) []string {
	var fields []string
	var cur strings.Builder
	quoted, inWord, escaped := false, false, false
	for _, r := range line {
		switch {
		case escaped:
			// iptables writes a quote inside a comment as \" (the CNI
			// plugins' `name: "storefleet" id: "..."`).
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quoted:
			escaped = true
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				fields = append(fields, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		fields = append(fields, cur.String())
	}
	return fields
}

// cleanNFT deletes kube-proxy's nftables tables, and the iptables-nft tables
// the host did not have before that are now empty.
func cleanNFT(before []string) []error {
	var errs []error
	present := nftTables()
	for _, fam := range []string{"ip", "ip6"} {
		if slices.Contains(present, "table "+fam+" kube-proxy") {
			if _, err := run("nft", "delete", "table", fam, "kube-proxy"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	had := map[string]bool{}
	for _, t := range before {
		had[t] = true
	}
	for _, t := range nftTables() {
		if had[t] || !strings.HasPrefix(t, "table ip") {
			continue
		}
		f := strings.Fields(t) // table <family> <name>
		if len(f) != 3 {
			continue
		}
		out, err := run("nft", "list", "table", f[1], f[2])
		if err != nil || hasRules(out) {
			continue
		}
		if _, err := run("nft", "delete", "table", f[1], f[2]); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// hasRules reports whether an `nft list table` output holds any rule (lines
// other than table/chain headers, chain types and braces).
func hasRules(listing string) bool {
	for _, line := range strings.Split(listing, "\n") {
		l := strings.TrimSpace(line)
		if l == "" || l == "}" || strings.HasPrefix(l, "table ") || strings.HasPrefix(l, "chain ") || strings.HasPrefix(l, "type ") {
			continue
		}
		return true
	}
	return false
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dirs ...string) []string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		mp := strings.ReplaceAll(f[1], `\040`, " ")
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				mounts = append(mounts, mp)
				break
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	return mounts
}

// kubepodsCgroups lists the kubelet's /kubepods cgroup in every hierarchy.
func kubepodsCgroups() []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		dirs = append(dirs, "/sys/fs/cgroup/kubepods")
	}
	return dirs
}

// removeCgroupTree removes a cgroup directory bottom-up (cgroupfs only
// allows rmdir of empty groups, and files inside cannot be removed).
func removeCgroupTree(root string) error {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	var last error
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			last = err
		}
	}
	if last != nil {
		return fmt.Errorf("remove cgroup %s: %w", root, last)
	}
	return nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}
