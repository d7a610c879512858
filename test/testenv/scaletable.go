package testenv

import "fmt"

// The fleet-scale table (make bench-scale, issue #19) is printed by two
// packages, test/scale (S1–S5, S7) and test/gitops (S6): one line format, so
// the table reads as one.

// ScaleHeader is the table's header line.
func ScaleHeader() string {
	return fmt.Sprintf("SCALE %5s  %-3s %-30s %-16s %-42s %-22s %-10s %s", "N", "#", "measure", "value", "baseline", "ratio", "goal", "")
}

// ScaleLine is one measure at n stores: its value, the baseline it is
// compared with, the ratio, the goal and whether the goal is met.
func ScaleLine(n int, id, what, value, baseline, ratio, goal, met string) string {
	return fmt.Sprintf("SCALE %5d  %-3s %-30s %-16s %-42s %-22s %-10s %s", n, id, what, value, baseline, ratio, goal, met)
}

// Met says whether a goal is met, in the table's words.
func Met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
