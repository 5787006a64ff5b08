package main

import "github.com/spf13/cobra"

// newDataCmd is a placeholder until the command is written.
func newDataCmd() *cobra.Command {
	return &cobra.Command{Use: "data", Hidden: true}
}
