package netns

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criimage/criimage/internal/testbin"
)

// TestSuiteRemote is the whole remote set-up of docs/remote.md: `criimage test` with its
// in-process registry in namespace A (--registry-listen, --registry-advertise,
// --registry-allow-remote) against `criimage serve` in namespace B, which reads the hosts
// directory the suite writes (shared, as the docs ask). Every spec must pass, and the ones that
// show the runtime reached the registry — plain, TLS by address and by name, the mirror, the
// foreign host — must have run rather than be unsupported. It takes a minute or two, so it runs
// under make netns-test only (CRIIMAGE_NETNS_TEST_BIN set).
func TestSuiteRemote(t *testing.T) {
	if os.Getenv("CRIIMAGE_NETNS_TEST_BIN") == "" {
		t.Skip("skipped: the whole suite across namespaces runs under make netns-test (CRIIMAGE_NETNS_TEST_BIN)")
	}
	ns := newNamespaces(t, "s")
	bin := testbin.Criimage(t, "CRIIMAGE_NETNS_TEST_BIN")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := shortTempDir(t)
	certs, reports := filepath.Join(dir, "certs.d"), filepath.Join(dir, "report")
	for _, d := range []string{certs, reports} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ns.writeRuntimeEtc(t, registryIP+" "+advertised)
	sock := filepath.Join(dir, "criimage.sock")
	// The pull progress timeout is short so that the cancellation specs take seconds, not minutes.
	startProcess(t, ns, ns.b, filepath.Join(dir, "serve.log"), bin, "serve", "-listen", "unix://"+sock,
		"-root", filepath.Join(dir, "root"), "-hosts-dir", certs, "-pull-progress-timeout", "10s")

	start := time.Now()
	cmd := ns.exec(ns.a, bin, "test", "--profile", filepath.Join(root, "suite", "profiles", "reference.yaml"),
		"--image-endpoint", "unix://"+sock, "--registry-config-dir", certs, "--features", "progress-timeout=10s",
		"--registry-listen", registryIP, "--registry-advertise", advertised, "--registry-allow-remote",
		"--report-dir", reports)
	out, err := cmd.CombinedOutput()
	summary, _ := os.ReadFile(filepath.Join(reports, "summary.md"))
	if err != nil {
		t.Fatalf("criimage test across namespaces: %v\n%s\n---- summary.md\n%s", err, tail(string(out), 60), summary)
	}
	t.Logf("the suite across namespaces ran in %s", time.Since(start).Round(time.Second))
	if !strings.Contains(string(summary), "fixture registry: serves other machines (listen "+registryIP+", advertised as "+advertised+")") {
		t.Errorf("summary.md does not describe the remote registry:\n%s", summary)
	}

	var rows []struct{ ID, Outcome string }
	b, err := os.ReadFile(filepath.Join(reports, "results.json"))
	if err == nil {
		err = json.Unmarshal(b, &rows)
	}
	if err != nil {
		t.Fatalf("results.json: %v", err)
	}
	outcome := map[string]string{}
	counts := map[string]int{}
	for _, r := range rows {
		outcome[r.ID] = r.Outcome
		counts[r.Outcome]++
	}
	t.Logf("outcomes: %v", counts)
	for _, id := range []string{"PRE-002", "PRE-004", "PRE-005", "PRE-006", "FMT-007", "LEAK-002", "LEAK-003", "LEAK-008", "LEAK-009"} {
		if outcome[id] != "passed" {
			t.Errorf("%s: %q, want passed (it shows the runtime on the other side reached the registry)", id, outcome[id])
		}
	}
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
