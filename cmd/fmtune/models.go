package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/models"
)

// ModelsOptions are the flags of fmtune models.
type ModelsOptions struct {
	JSON bool

	Out io.Writer
}

func newModelsCmd() *cobra.Command {
	opts := &ModelsOptions{}
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List the architectures (with parameter counts) and optimizers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			return modelsRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func modelsRun(_ context.Context, opts *ModelsOptions) error {
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			Archs      []models.ArchInfo      `json:"archs"`
			Optimizers []models.OptimizerInfo `json:"optimizers"`
			BLAS       string                 `json:"blas"`
		}{models.Archs(), models.OptimizerInfos(), models.BLASName()})
	}
	tw := tabwriter.NewWriter(opts.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ARCH\tPARAMS\tLAYERS")
	for _, a := range models.Archs() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, thousands(a.Params), a.Description)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "OPTIMIZER\tDESCRIPTION")
	for _, o := range models.OptimizerInfos() {
		fmt.Fprintf(tw, "%s\t%s\n", o.Name, o.Description)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(opts.Out, "\nBLAS: %s\n", models.BLASName())
	return err
}
