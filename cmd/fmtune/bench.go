package main

import "github.com/spf13/cobra"

// newBenchCmd is a placeholder until the command is written.
func newBenchCmd() *cobra.Command {
	return &cobra.Command{Use: "bench", Hidden: true}
}
