package registry_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/auth"
)

// conformanceVersion pins the opencontainers/distribution-spec conformance binary (the
// "conformance redesign", a main package that cannot be imported).
const conformanceVersion = "github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"

// TestDistributionSpecConformance runs the OCI distribution-spec conformance binary against the
// registry: plain HTTP in the anonymous, basic and token namespaces, and TLS verified against the
// generated CA (SSL_CERT_FILE). It needs the binary, so it is opt-in: set CRIIMAGE_CONFORMANCE=1
// (the test builds it with "go install", which needs the module proxy) or
// CRIIMAGE_CONFORMANCE_BIN=path.
//
// Disabled data set: "sparse" (manifests whose blobs were never pushed): this registry answers
// MANIFEST_BLOB_UNKNOWN like distribution, which the spec allows.
func TestDistributionSpecConformance(t *testing.T) {
	bin := os.Getenv("CRIIMAGE_CONFORMANCE_BIN")
	if bin == "" {
		if os.Getenv("CRIIMAGE_CONFORMANCE") == "" {
			t.Skip("set CRIIMAGE_CONFORMANCE=1 or CRIIMAGE_CONFORMANCE_BIN to run the distribution-spec conformance binary")
		}
		gobin := t.TempDir()
		cmd := exec.CommandContext(t.Context(), "go", "install", conformanceVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
		cmd.Dir = gobin
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go install %s: %v\n%s", conformanceVersion, err, out)
		}
		bin = filepath.Join(gobin, "conformance")
	}
	reg := start(t, registry.Options{})
	for _, tc := range []struct {
		name, ns string
		tls      bool
	}{
		{"plain anon", "anon", false},
		{"plain basic", "basic", false},
		{"plain token", "token", false},
		{"tls token", "token", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := t.TempDir()
			cmd := exec.CommandContext(t.Context(), bin)
			cmd.Dir = results
			env := []string{
				"OCI_REGISTRY=" + reg.PlainHost(),
				"OCI_TLS=disabled",
				"OCI_REPO1=" + tc.ns + "/conformance/" + strings.ReplaceAll(tc.name, " ", "-") + "/one",
				"OCI_REPO2=" + tc.ns + "/conformance/" + strings.ReplaceAll(tc.name, " ", "-") + "/two",
				"OCI_RESULTS_DIR=" + results,
				"OCI_VERSION=1.1",
				// The tool always sends Basic user:pass to the token realm, ":" when
				// anonymous, which the token service rightly refuses as wrong credentials.
				"OCI_USERNAME=" + auth.FixtureUser,
				"OCI_PASSWORD=" + auth.FixturePassword,
				"OCI_API_BLOBS_UPLOAD_CANCEL=true",
				"OCI_API_BLOBS_DIGEST_HEADER=true",
				"OCI_API_MANIFESTS_DIGEST_HEADER=true",
				"OCI_API_MANIFESTS_TAG_PARAM=true",
			}
			if tc.tls {
				env = append(env, "OCI_REGISTRY="+reg.TLSAddr(), "OCI_TLS=enabled", "SSL_CERT_FILE="+reg.CAFile(), "SSL_CERT_DIR=/nonexistent")
			}
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("conformance binary: %v\n%s", err, out)
			}
			y, err := os.ReadFile(filepath.Join(results, "results.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			failed := false
			for _, line := range strings.Split(string(y), "\n") {
				if strings.Contains(line, "Fail") || strings.Contains(line, "Error") {
					t.Errorf("conformance: %s", strings.TrimSpace(line))
					failed = true
				}
			}
			if failed || !strings.Contains(string(out), "OCI Conformance Test: Pass") {
				t.Errorf("conformance output:\n%s", out)
			}
		})
	}
}
