package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Usage mistakes as the command line says them: unknown commands and flags
// with the closest valid name, and bad flag values in one form whatever the
// flag's type.

// unknownCommand turns cobra's "unknown command" error into a usage error
// that suggests the closest command; other errors come back unchanged.
func unknownCommand(root *cobra.Command, err error) error {
	m := unknownCommandRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	name, parent := m[1], root
	if fields := strings.Fields(m[2]); len(fields) > 1 {
		if c, _, ferr := root.Find(fields[1:]); ferr == nil {
			parent = c
		}
	}
	if parent.SuggestionsMinimumDistance <= 0 {
		parent.SuggestionsMinimumDistance = 2
	}
	hint := ""
	if s := parent.SuggestionsFor(name); len(s) > 0 {
		hint = fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usagef("unknown command %q for %q%s (%s --help lists the commands)", name, parent.CommandPath(), hint, parent.CommandPath())
}

var (
	unknownCommandRE = regexp.MustCompile(`^unknown command "(.*)" for "(.*)"`)
	unknownFlagRE    = regexp.MustCompile(`^unknown flag: --(\S+)$`)
	unknownShortRE   = regexp.MustCompile(`^unknown shorthand flag: '(.)'`)
	needsValueRE     = regexp.MustCompile(`^flag needs an argument: (?:'(.)' in -.|--(\S+))$`)
	badValueRE       = regexp.MustCompile(`^invalid argument "(.*)" for "(?:-\w, )?--([^"]+)" flag: (.*)$`)
)

// flagError is the root's FlagErrorFunc: every flag mistake is a usage
// error (exit 2) that names the flag and the fix.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	help := fmt.Sprintf("(%s --help lists the flags)", cmd.CommandPath())
	if m := unknownFlagRE.FindStringSubmatch(msg); m != nil {
		name, _, _ := strings.Cut(m[1], "=")
		if s := closestFlag(cmd, name); s != "" {
			return usagef("unknown flag --%s; did you mean --%s? %s", name, s, help)
		}
		return usagef("unknown flag --%s %s", name, help)
	}
	if m := unknownShortRE.FindStringSubmatch(msg); m != nil {
		return usagef("unknown flag -%s %s", m[1], help)
	}
	if m := badValueRE.FindStringSubmatch(msg); m != nil {
		return usagef("--%s %q: %q is %s", m[2], m[1], m[1], valueProblem(cmd.Flags().Lookup(m[2]), m[3]))
	}
	if m := needsValueRE.FindStringSubmatch(msg); m != nil {
		if m[1] != "" {
			return usagef("-%s needs a value %s", m[1], help)
		}
		return usagef("--%s needs a value %s", m[2], help)
	}
	return &usageError{msg: msg + " " + help}
}

// valueProblem says what is wrong with a flag's value, from the parser's
// error, and gives an example.
func valueProblem(f *pflag.Flag, cause string) string {
	example := func(fallback string) string {
		if f != nil && f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" {
			return fmt.Sprintf("e.g. --%s %s", f.Name, f.DefValue)
		}
		return fmt.Sprintf("e.g. --%s %s", flagName(f), fallback)
	}
	switch {
	case strings.Contains(cause, "value out of range"):
		return "too large a number"
	case strings.HasPrefix(cause, "strconv.ParseFloat"):
		return "not a number (" + example("0.01") + ")"
	case strings.HasPrefix(cause, "strconv.ParseInt"), strings.HasPrefix(cause, "strconv.ParseUint"):
		return "not a whole number (" + example("3") + ")"
	case strings.HasPrefix(cause, "strconv.ParseBool"):
		return "neither true nor false"
	case strings.HasPrefix(cause, "time: "):
		return "not a duration (" + example("30m") + "; units: s, m, h)"
	}
	return cause
}

func flagName(f *pflag.Flag) string {
	if f == nil {
		return "FLAG"
	}
	return f.Name
}

// closestFlag is the flag of cmd nearest to name: one it starts, or one at
// an edit distance of at most 2. "" when none is close.
func closestFlag(cmd *cobra.Command, name string) string {
	best, bestDist := "", 3
	visit := func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
