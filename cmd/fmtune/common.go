package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// exactArgs wants n positional arguments, described by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usagef("%s needs %s (usage: %s)", cmd.CommandPath(), what, cmd.UseLine())
		case len(args) > n && n == 1:
			return usagef("%s takes one argument, %s; got %d: %s (usage: %s)", cmd.CommandPath(), what, len(args), quoteAll(args), cmd.UseLine())
		case len(args) > n:
			return usagef("%s takes %d arguments, %s; got %d: %s (usage: %s)", cmd.CommandPath(), n, what, len(args), quoteAll(args), cmd.UseLine())
		}
		return nil
	}
}

// quoteAll quotes each argument: "a" "b".
func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", *v)
}

// formatParams prints params as lr=0.01 optimizer=adam batch=128, in that
// order, then any others by name.
func formatParams(params map[string]any) string {
	order := map[string]int{"lr": 0, "optimizer": 1, "batch": 2}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, iok := order[keys[i]]
		oj, jok := order[keys[j]]
		if iok != jok {
			return iok
		}
		if iok {
			return oi < oj
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, params[k])
	}
	return strings.Join(parts, " ")
}
