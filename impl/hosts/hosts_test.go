package hosts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func mkdir(t *testing.T, root, name, toml string) string {
	t.Helper()
	d := filepath.Join(root, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if toml != "" {
		if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestDirRootsInOrder(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	inB := mkdir(t, b, "reg.example:5000", `server = "https://reg.example:5000"`)
	portDir := mkdir(t, a, "other.example_5000_", "")
	def := mkdir(t, b, "_default", "")
	dir := Dir([]string{"", a, b})
	for host, want := range map[string]string{
		"reg.example:5000":   inB,     // only in the second root
		"other.example:5000": portDir, // host_port_ form, first root
		"unknown.example":    def,     // _default of the second root (the first has none)
	} {
		got, err := dir(host)
		if err != nil || got != want {
			t.Errorf("Dir(%s) = %q, %v; want %q", host, got, err, want)
		}
	}
	if _, err := Dir([]string{a})("unknown.example"); !errdefs.IsNotFound(err) {
		t.Errorf("no match: %v, want NotFound", err)
	}
}

func TestDirHostCase(t *testing.T) {
	root := t.TempDir()
	reg := mkdir(t, root, "reg.example:5000", `server = "https://reg.example:5000"`)
	def := mkdir(t, root, "_default", "")
	dir := Dir([]string{root})
	for host, want := range map[string]string{
		"REG.Example:5000":  reg, // capitals: the lower-case directory, not _default
		"reg.example:5000":  reg,
		"OTHER.example:443": def, // no directory in either case: _default
	} {
		if got, err := dir(host); err != nil || got != want {
			t.Errorf("Dir(%s) = %q, %v; want %q", host, got, err, want)
		}
	}
	if _, err := Dir([]string{t.TempDir()})("REG.Example:5000"); !errdefs.IsNotFound(err) {
		t.Errorf("no match in either case: %v, want NotFound", err)
	}
}

func TestValidate(t *testing.T) {
	root := t.TempDir()
	for name, tc := range map[string]struct{ toml, want string }{
		"ok":         {"server = \"https://r\"\n[host.\"https://m\"]\n  capabilities = [\"pull\", \"Resolve\"]\n  ca = [\"a.crt\"]\n  skip_verify = true\n  dial_timeout = \"2s\"\n", ""},
		"syntax":     {"server = [[[", "malformed"},
		"capability": {"[host.\"https://m\"]\n  capabilities = [\"fly\"]\n", "unknown capability \"fly\""},
		"timeout":    {"dial_timeout = \"soon\"\n", "dial_timeout"},
		"ca type":    {"ca = 3\n", "\"ca\" must be a string or a list"},
		"type":       {"skip_verify = \"yes\"\n", "malformed"},
	} {
		d := mkdir(t, root, strings.ReplaceAll(name, " ", "_"), tc.toml)
		err := Validate(d)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(d, "hosts.toml")) {
			t.Errorf("%s: Validate = %v, want an error naming the file and %q", name, err, tc.want)
		}
	}
	if err := Validate(t.TempDir()); err != nil {
		t.Errorf("no hosts.toml: %v", err)
	}
}
