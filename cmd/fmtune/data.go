package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/fmtune/fmtune/data"
	"github.com/spf13/cobra"
)

// newDataCmd builds `fmtune data` and its subcommands.
func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Locate, download and inspect the Fashion-MNIST data",
		Long: `The data is looked for in this order: the --data flag, $FMTUNE_DATA,
` + data.SystemDir + ` (apt-get install dataset-fashion-mnist),
and the user cache directory, where 'fmtune data download' puts it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for \"fmtune data\"", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newDataInfoCmd(), newDataDownloadCmd())
	return cmd
}

// DataInfoOptions are the options of `fmtune data info`.
type DataInfoOptions struct {
	Out  io.Writer
	Dir  string // --data
	Val  int
	JSON bool
}

func newDataInfoCmd() *cobra.Command {
	opts := &DataInfoOptions{}
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show where the data is, its files, checksums and class histograms",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			if opts.Val <= 0 {
				return usagef("--val must be > 0, got %d", opts.Val)
			}
			return dataInfoRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "data", "", "Fashion-MNIST directory (default: $FMTUNE_DATA, "+data.SystemDir+", user cache)")
	cmd.Flags().IntVar(&opts.Val, "val", data.DefaultVal, "validation size: the last N training images")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// dataInfo is the JSON form of `fmtune data info`.
type dataInfo struct {
	Dir      string          `json:"dir"`
	Source   string          `json:"source"`
	Files    []data.FileInfo `json:"files"`
	Checksum string          `json:"checksum"`
	Official bool            `json:"official"`
	Classes  []string        `json:"classes"`
	Splits   []splitInfo     `json:"splits"`
}

type splitInfo struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	Counts []int  `json:"counts"` // per class, indexed by label
}

func dataInfoRun(_ context.Context, opts *DataInfoOptions) error {
	dir, source, err := data.LocateSource(opts.Dir)
	if err != nil {
		return err
	}
	ds, err := data.Load(dir, data.Options{Val: opts.Val})
	if err != nil {
		return err
	}
	info := dataInfo{
		Dir:      dir,
		Source:   source,
		Files:    ds.Files,
		Checksum: ds.Checksum,
		Official: ds.Checksum == data.OfficialChecksum,
		Classes:  data.ClassNames[:],
	}
	for _, s := range []struct {
		name string
		set  *data.Set
	}{{"train", ds.Train}, {"val", ds.Val}, {"test", ds.Test}} {
		c := s.set.ClassCounts()
		info.Splits = append(info.Splits, splitInfo{Name: s.name, Size: s.set.Len(), Counts: c[:]})
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	return printDataInfo(opts.Out, &info, opts.Val)
}

func printDataInfo(out io.Writer, info *dataInfo, val int) error {
	official := "not the official Fashion-MNIST"
	if info.Official {
		official = "official Fashion-MNIST"
	}
	fmt.Fprintf(out, "data:     %s (from %s)\n", info.Dir, info.Source)
	fmt.Fprintf(out, "checksum: %s (of the decompressed contents; %s)\n\n", info.Checksum, official)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tCOUNT\tBYTES\tSHA-256")
	for _, f := range info.Files {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", f.Name, f.Count, f.Size, f.SHA256)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsplit: train %d, val %d (the last %d training images), test %d\n\n",
		info.Splits[0].Size, info.Splits[1].Size, val, info.Splits[2].Size)
	fmt.Fprintf(out, "%5s  %-12s %6s %6s %6s\n", "LABEL", "CLASS", "TRAIN", "VAL", "TEST")
	for c, name := range info.Classes {
		fmt.Fprintf(out, "%5d  %-12s %6d %6d %6d\n", c, name,
			info.Splits[0].Counts[c], info.Splits[1].Counts[c], info.Splits[2].Counts[c])
	}
	_, err := fmt.Fprintf(out, "%5s  %-12s %6d %6d %6d\n", "", "total",
		info.Splits[0].Size, info.Splits[1].Size, info.Splits[2].Size)
	return err
}

// DataDownloadOptions are the options of `fmtune data download`.
type DataDownloadOptions struct {
	Out, Err io.Writer
	Dir      string // --dir; "" means the user cache
	BaseURL  string // hidden --base-url, for tests and mirrors
}

func newDataDownloadCmd() *cobra.Command {
	opts := &DataDownloadOptions{}
	cmd := &cobra.Command{
		Use:   "download",
		Short: "Download Fashion-MNIST from the official mirror and verify it",
		Long: `Download the four Fashion-MNIST .gz files from the official mirror into the
user cache directory (or --dir), checking their pinned SHA-256 checksums.
Files already present with the right content are skipped. On Debian,
'apt-get install dataset-fashion-mnist' is an alternative.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out, opts.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return dataDownloadRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "destination directory (default: user cache, fmtune/fashion-mnist)")
	cmd.Flags().StringVar(&opts.BaseURL, "base-url", data.DefaultBaseURL, "mirror base URL")
	_ = cmd.Flags().MarkHidden("base-url")
	return cmd
}

func dataDownloadRun(ctx context.Context, opts *DataDownloadOptions) error {
	dir := opts.Dir
	if dir == "" {
		d, err := data.CacheDir()
		if err != nil {
			return err
		}
		dir = d
	}
	done, err := data.Download(ctx, data.DownloadOptions{Dir: dir, BaseURL: opts.BaseURL, Progress: opts.Err})
	if err != nil {
		return err
	}
	fetched := 0
	for _, d := range done {
		if !d.Skipped {
			fetched++
		}
	}
	fmt.Fprintf(opts.Out, "Fashion-MNIST is in %s (%d downloaded, %d already present)\n", dir, fetched, len(done)-fetched)
	return nil
}
