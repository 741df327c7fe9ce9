package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/criimage/criimage/fixtures"
)

// TestVersion: `criimage version --json` reports the cri-api version the binary links, a spec
// count, and the fixture fingerprint; `--version` is the same command, and the text form names
// every field.
func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--version", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("criimage --version --json: exit %d: %s", code, errb.String())
	}
	var v versionInfo
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("criimage version --json: %v\n%s", err, out.String())
	}
	fp, err := fixtures.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if v.CRIAPI == "" || v.Containerd == "" || v.GoVersion == "" || v.Version == "" {
		t.Errorf("version info lacks a field: %+v", v)
	}
	// The suite has over a hundred specs; a tree that failed to register would count none.
	if v.Specs < 100 {
		t.Errorf("specs = %d, want the whole tree (over 100)", v.Specs)
	}
	if v.Fixtures != fp.String() {
		t.Errorf("fixtures = %q, want the catalog fingerprint %s", v.Fixtures, fp)
	}
	for _, want := range []string{"criimage " + v.Version, "cri-api", "k8s.io/cri-api " + v.CRIAPI, "specs", "fixtures    " + v.Fixtures} {
		if !strings.Contains(v.text(), want) {
			t.Errorf("text form lacks %q:\n%s", want, v.text())
		}
	}
	if code := run(context.Background(), []string{"version", "extra"}, &out, &errb); code != 2 {
		t.Errorf("criimage version extra: exit %d, want 2 (usage)", code)
	}
}
