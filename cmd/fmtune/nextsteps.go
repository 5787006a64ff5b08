package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/fmtune/fmtune/storage"
)

// storageText names a storage for a person: its URL (password hidden) and,
// for SQLite, the absolute path of the file.
func storageText(store *storage.Storage) string {
	u := store.String()
	path, ok := strings.CutPrefix(u, "sqlite:///")
	if !ok {
		return u
	}
	abs, err := filepath.Abs(path)
	if err != nil || abs == path {
		return u
	}
	return fmt.Sprintf("%s (%s)", u, abs)
}

// nextSteps says where the results of a run are stored and the commands
// that read them. flag is the --storage the run was given ("" for the
// default, which the commands then need not repeat).
func nextSteps(w io.Writer, store *storage.Storage, flag string, names ...string) {
	if len(names) == 0 {
		return
	}
	fmt.Fprintf(w, "results stored in %s\n", storageText(store))
	with := ""
	if flag != "" {
		with = " --storage " + store.String()
	}
	list := strings.Join(names, " ")
	out := names[0] + ".html"
	if len(names) > 1 {
		out = "report.html"
	}
	var cmds []string
	if len(names) == 1 {
		cmds = append(cmds, "fmtune best "+names[0]+with, "fmtune trials "+names[0]+with)
	} else {
		cmds = append(cmds, "fmtune compare "+list+with)
	}
	cmds = append(cmds, "fmtune report "+list+" --out "+out+with)
	fmt.Fprintf(w, "next: %s\n", strings.Join(cmds, "; "))
}
