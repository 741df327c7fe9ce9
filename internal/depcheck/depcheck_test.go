package depcheck

import (
	"bufio"
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/criimage/criimage"

// rule is one row of the table: the packages of ours a package may import.
type rule struct {
	all      bool
	patterns []string // "registry/route" exact, "registry/..." subtree
}

func (r rule) allows(pkg string) bool {
	if r.all {
		return true
	}
	for _, p := range r.patterns {
		if base, ok := strings.CutSuffix(p, "/..."); ok {
			if pkg == base || strings.HasPrefix(pkg, base+"/") {
				return true
			}
		} else if pkg == p {
			return true
		}
	}
	return false
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readTable parses the "Who may import whom" table of docs/design.md.
func readTable(t *testing.T, path string) map[string]rule {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules := map[string]rule{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "| package | job | may import (ours) |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("%s: row %q does not have 3 cells", path, line)
		}
		pkgs := backticked.FindAllStringSubmatch(cells[0], -1)
		if len(pkgs) != 1 {
			t.Fatalf("%s: row %q must name exactly one package", path, line)
		}
		var r rule
		switch cell := strings.TrimSpace(cells[2]); cell {
		case "all":
			r.all = true
		case "—":
		default:
			for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
				r.patterns = append(r.patterns, m[1])
			}
			if len(r.patterns) == 0 {
				t.Fatalf("%s: row %q: the last cell is neither all, — nor backticked packages", path, line)
			}
		}
		if _, dup := rules[pkgs[0][1]]; dup {
			t.Fatalf("%s: %s has two rows", path, pkgs[0][1])
		}
		rules[pkgs[0][1]] = r
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no import table found", path)
	}
	return rules
}

// packages reads every package of the module under root with go/build (non-test files; reading
// them here, not through a go list subprocess, lets go test's cache see every file it depends on).
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "bin" || name == "dist") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			var none *build.NoGoError
			if errors.As(err, &none) {
				return nil
			}
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = pkg.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportRules: every package has a row, and imports only what its row allows.
func TestImportRules(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	rules := readTable(t, filepath.Join(root, "docs", "design.md"))
	pkgs := packages(t, root)
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		r, ok := rules[name]
		if !ok {
			t.Errorf("package %s has no row in docs/design.md's import table", name)
			continue
		}
		for _, imp := range pkgs[name] {
			ours, ok := strings.CutPrefix(imp, module+"/")
			if !ok || ours == name {
				continue
			}
			if !r.allows(ours) {
				t.Errorf("%s imports %s, which its row in docs/design.md does not allow", name, ours)
			}
		}
	}
	var stale []string
	for name := range rules {
		if _, ok := pkgs[name]; !ok {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	for _, name := range stale {
		t.Errorf("docs/design.md's import table has a row for %s, which is not a package", name)
	}
}
