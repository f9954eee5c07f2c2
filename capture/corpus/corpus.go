// Package corpus locates the shared corpus of real public captures that
// tests replay (../shared/corpus beside the repository, with its
// PROVENANCE.md). A clone of the repository alone has no corpus: there the
// tests that need it skip with a message saying so; CI (CI=true) must have
// it, and fails instead of skipping.
package corpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/icmpids/icmpids/internal/testenv"
)

// Dir returns the corpus directory, found from the module root (the
// directory holding go.mod above the working directory). Without a corpus
// it skips t, or fails it when the environment variable CI is set.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := locate()
	if err == nil {
		if _, err = os.Stat(filepath.Join(dir, "PROVENANCE.md")); err == nil {
			return dir
		}
	}
	testenv.Missing(t, "shared corpus not found (../shared/corpus beside the repository): %v", err)
	return ""
}

// Path returns the path of rel (e.g. "pod/x.pcap") in the corpus, skipping
// or failing t as Dir does when there is no corpus.
func Path(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(Dir(t), filepath.FromSlash(rel))
}

// locate walks up from the working directory to the module root and
// returns ../shared/corpus from there.
func locate() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared", "corpus"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
