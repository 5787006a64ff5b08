package main

import "github.com/spf13/cobra"

// newModelsCmd is a placeholder until the command is written.
func newModelsCmd() *cobra.Command {
	return &cobra.Command{Use: "models", Hidden: true}
}
