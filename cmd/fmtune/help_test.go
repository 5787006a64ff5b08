package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpNamesFilesThatExist: every examples/ file a command's help names
// is shipped, and the spec file of tune's example runs.
func TestHelpNamesFilesThatExist(t *testing.T) {
	named := regexp.MustCompile(`examples/[\w.-]*\w`)
	var walk func(c *cobra.Command)
	seen := map[string]bool{}
	walk = func(c *cobra.Command) {
		for _, p := range named.FindAllString(c.Long+"\n"+c.Example, -1) {
			seen[p] = true
			if _, err := os.Stat(filepath.Join("../..", p)); err != nil {
				t.Errorf("%s --help names %s: %v", c.CommandPath(), p, err)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(nil, io.Discard, io.Discard))
	if !seen["examples/study.yaml"] {
		t.Fatalf("tune's help no longer names examples/study.yaml; names %v", seen)
	}
	dir := t.TempDir()
	_, errOut, code := runIn(t, testFactory(dir, &fakeTrain{}), "tune", "-f", "../../examples/study.yaml", "--trials", "2", "--epochs", "1", "--val", "2", "--workers", "1", "-q")
	if code != 0 || strings.Contains(errOut, "fmtune:") {
		t.Fatalf("tune -f examples/study.yaml: exit %d\n%s", code, errOut)
	}
}
