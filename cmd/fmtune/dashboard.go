package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study/dashboard"
)

// DashboardOptions are the options of fmtune dashboard.
type DashboardOptions struct {
	f       *Factory
	Storage string
	Addr    string
	Stdout  io.Writer
	Stderr  io.Writer
}

func newDashboardCmd(f *Factory) *cobra.Command {
	opts := &DashboardOptions{f: f}
	cmd := &cobra.Command{
		Use:   "dashboard [--storage URL] [--addr 127.0.0.1:8080]",
		Short: "Watch and explore the studies live in a web browser",
		Long: `Serve a web dashboard of the studies in a storage, from this binary (no
network, nothing to install): every study with its arch, sampler, pruner,
trials by state and best value; for one study, the report's comparison and
figures, parameter importance, parallel coordinates and a trial table you
can sort and filter by state, source and parameter; for one trial, its
whole learning curve and attributes.

Pages update by themselves within about a second as trials and epochs are
stored, by this machine or any other (SQLite or PostgreSQL), and running
trials are marked. The dashboard only reads: SQLite is opened read-only,
PostgreSQL sessions are read-only, so it can watch a study in progress
without getting in its way.

It listens on 127.0.0.1 (this machine only) unless --addr says otherwise;
the dashboard has no login, so --addr 0.0.0.0:8080 shows every study to
anyone who can reach the port. --addr 127.0.0.1:0 picks a free port.
Ctrl-C stops it.`,
		Example: `  fmtune dashboard                          # sqlite:///fmtune.db at http://127.0.0.1:8080/
  fmtune dashboard --storage sqlite:////data/studies.db --addr 127.0.0.1:9000
  FMTUNE_STORAGE=postgresql://fmtune:secret@db:5432/fmtune fmtune dashboard`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Stdout, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return dashboardRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Storage, "storage", "", "storage URL (default $FMTUNE_STORAGE, else sqlite:///fmtune.db)")
	cmd.Flags().StringVar(&opts.Addr, "addr", "127.0.0.1:8080", "host:port to listen on (127.0.0.1: this machine only)")
	return cmd
}

func dashboardRun(ctx context.Context, opts *DashboardOptions) error {
	host, port, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return usagef("--addr %q: %v; give host:port, e.g. --addr 127.0.0.1:8080", opts.Addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return usagef("--addr %q: %q is not a port; give host:port, e.g. --addr 127.0.0.1:8080", opts.Addr, port)
	}
	// The address first: a port in use is found before the storage is touched.
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("cannot listen on %s: the address is in use (another dashboard?); choose another port, e.g. --addr %s (a free one)",
				opts.Addr, net.JoinHostPort(host, "0"))
		}
		return fmt.Errorf("cannot listen on %s: %w; check the host in --addr", opts.Addr, err)
	}
	defer ln.Close()
	store, err := storage.OpenReadOnly(ctx, opts.f.StoreURL(opts.Storage))
	if err != nil {
		return err
	}
	defer store.Close()
	loopback := isLoopback(ln.Addr())
	srv := &http.Server{
		Handler:           dashboard.New(store, dashboard.Options{Storage: store.String(), Loopback: loopback}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	url := "http://" + ln.Addr().String() + "/"
	if !loopback {
		fmt.Fprintf(opts.Stderr, "fmtune: warning: listening on %s, not only on this machine: anyone who can reach it sees every study in %s (read-only, no login); use --addr 127.0.0.1:%s to keep it local\n",
			ln.Addr(), store, port)
		if host == "" || net.ParseIP(host).IsUnspecified() {
			url = "http://<this machine's address>:" + portOf(ln.Addr()) + "/"
		}
	}
	fmt.Fprintf(opts.Stdout, "fmtune dashboard: %s (read-only) at %s\n", store, url)
	fmt.Fprintln(opts.Stdout, "Ctrl-C stops it.")

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return ctx.Err()
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

func portOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return fmt.Sprint(ta.Port)
	}
	return ""
}
