package main

import "github.com/spf13/cobra"

// newTrainCmd is a placeholder until the command is written.
func newTrainCmd() *cobra.Command {
	return &cobra.Command{Use: "train", Hidden: true}
}
