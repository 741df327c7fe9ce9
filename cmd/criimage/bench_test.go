package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/runtimeconfig"
)

// benchTiny are sizes that keep a `criimage bench` run to seconds: one run of every case.
var benchTiny = []string{"-runs", "1", "-large", "2MiB", "-large-layers", "2", "-huge", "4MiB", "-huge-layers", "2",
	"-many-layers", "5", "-fresh", "1MiB", "-concurrent", "4", "-list", "40", "-fill-par", "8"}

// benchCases are the rows benchTiny's run must have, in order.
var benchCases = []string{"pull-2MiB-2", "rss-2MiB-2", "pull-4MiB-2", "pull-5-layers", "pull-1MiB", "concurrent-4", "list-40", "stream-40"}

// serveRuntime is a `criimage serve` process started for a test: the runtime under measurement.
type serveRuntime struct {
	endpoint, certs string
	images          runtime.ImageServiceClient
}

// startServe runs this binary as `criimage serve` on a unix socket in a temp dir, reading its
// certs.d there, and stops it when the test ends.
func startServe(t *testing.T) *serveRuntime {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d")
	if err := os.MkdirAll(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	endpoint := "unix://" + filepath.Join(dir, "s.sock")
	cmd := exec.Command(exe, "serve", "-listen", endpoint, "-root", filepath.Join(dir, "root"), "-hosts-dir", certs,
		"-snapshotter", "native", "-log-level", "warn")
	cmd.Env = append(os.Environ(), envBeMain+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "serving ") {
		t.Fatalf("criimage serve did not start: %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	conn, err := criendpoint.Dial(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &serveRuntime{endpoint: endpoint, certs: certs, images: runtime.NewImageServiceClient(conn)}
}

// refs lists every reference (tags and digests) in the runtime's store.
func (s *serveRuntime) refs(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := s.images.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	var out []string
	for _, im := range r.GetImages() {
		out = append(out, slices.Concat(im.GetRepoTags(), im.GetRepoDigests())...)
		if len(im.GetRepoTags())+len(im.GetRepoDigests()) == 0 {
			out = append(out, im.GetId())
		}
	}
	return out
}

// certsEntries lists what is in the runtime's certs.d.
func (s *serveRuntime) certsEntries(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir(s.certs)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestBenchEndpoint: `criimage bench --image-endpoint` against a `criimage serve` started for the
// test (real gRPC on a unix socket), with the reference beside it: every row, every value > 0,
// the ratio column, the same table on stdout and in --out, and nothing left behind — no image in
// the runtime's store, no hosts.toml in its certs.d.
func TestBenchEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("pulls images")
	}
	t.Parallel()
	rt := startServe(t)
	dir := t.TempDir()
	jsonFile, mdFile := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.md")
	args := append([]string{"bench", "--image-endpoint", rt.endpoint, "--registry-config-dir", rt.certs,
		"--compare-reference", "--snapshotter", "native", "--json", jsonFile, "--out", mdFile}, benchTiny...)
	code, stdout, stderr := criimage(t, nil, args...)
	if code != 0 {
		t.Fatalf("criimage bench: exit %d\n%s\n%s", code, tail(stdout), tail(stderr))
	}

	var rep benchReport
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("--json: %v", err)
	}
	const name = "criimage devel" // what criimage serve's Version RPC says
	if want := []string{name, "reference"}; !slices.Equal(rep.Runtimes, want) {
		t.Errorf("runtimes %q, want %q", rep.Runtimes, want)
	}
	var got []string
	for _, c := range rep.Cases {
		got = append(got, c.Name)
		for _, r := range rep.Runtimes {
			s, ok := c.Results[r]
			if !ok || s.Error != "" || len(s.Values) != 1 {
				t.Errorf("%s on %s: %+v, want one value and no error", c.Name, r, s)
				continue
			}
			if s.Values[0] <= 0 || s.Median <= 0 {
				t.Errorf("%s on %s: %v, want > 0", c.Name, r, s.Values)
			}
			if c.Unit == "bytes" && s.Median < 1<<20 {
				t.Errorf("%s on %s: peak RSS %v B, implausible for a Go daemon", c.Name, r, s.Median)
			}
			if strings.HasPrefix(c.Name, "concurrent-") && s.MaxBlobGETs != 1 {
				t.Errorf("%s on %s: %d GETs of one blob, want 1 (the reference merges pulls)", c.Name, r, s.MaxBlobGETs)
			}
		}
		if q := c.Ratios[name]; q <= 0 {
			t.Errorf("%s: ratio reference/%s = %v, want > 0", c.Name, name, q)
		}
	}
	if !slices.Equal(got, benchCases) {
		t.Errorf("cases %q, want %q", got, benchCases)
	}

	md, err := os.ReadFile(mdFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, string(md)) {
		t.Errorf("stdout lacks the --out table:\n%s", stdout)
	}
	if hdr := "| case | " + name + " | reference | ref/" + name + " |"; !strings.Contains(string(md), hdr) {
		t.Errorf("table lacks the header %q:\n%s", hdr, md)
	}
	for _, c := range benchCases {
		if !strings.Contains(string(md), "| `"+c+"` | ") {
			t.Errorf("table lacks the row %s:\n%s", c, md)
		}
	}
	if strings.Contains(string(md), "error:") || strings.Contains(string(md), "| — |") {
		t.Errorf("table has an empty or failed cell:\n%s", md)
	}

	if left := rt.refs(t); len(left) > 0 {
		t.Errorf("after criimage bench the runtime still holds %q", left)
	}
	if left := rt.certsEntries(t); len(left) > 0 {
		t.Errorf("after criimage bench the runtime's certs.d still holds %q", left)
	}
}

// userImages puts two images into rt's store from a registry of the test's own, as a user's
// would be: one named like the bench's (repository anon/bench/…), one not.
func userImages(t *testing.T, rt *serveRuntime) (benchNamed, other string) {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	if _, err := runtimeconfig.WriteCertsDir(rt.certs, reg, runtimeconfig.CertsOptions{NoDockerIO: true}); err != nil {
		t.Fatal(err)
	}
	for i, repo := range []string{"anon/bench/mine", "anon/user/keep"} {
		if err := fixtures.Unique(fmt.Sprintf("%s user image %d", t.Name(), i), 1, 1024).Push(reg, repo, "v1"); err != nil {
			t.Fatal(err)
		}
		ref := reg.PlainHost() + "/" + repo + ":v1"
		if _, err := rt.images.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if i == 0 {
			benchNamed = ref
		} else {
			other = ref
		}
	}
	// The runtime keeps the images; their registry's hosts.toml goes, so that only the bench's
	// own entries come and go in certs.d.
	if err := os.RemoveAll(filepath.Join(rt.certs, reg.PlainHost())); err != nil {
		t.Fatal(err)
	}
	return benchNamed, other
}

// TestBenchLeavesUserImagesAlone: a store holding an image named like the bench's is refused
// before anything is pulled (the bench would remove it), and a run beside a user's other image
// leaves that image where it was.
func TestBenchLeavesUserImagesAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("pulls images")
	}
	t.Parallel()
	rt := startServe(t)
	benchNamed, other := userImages(t, rt)
	base := []string{"bench", "--image-endpoint", rt.endpoint, "--registry-config-dir", rt.certs}

	code, stdout, stderr := criimage(t, nil, append(base, benchTiny...)...)
	if code != 1 || !strings.Contains(stderr, "already holds 1 image(s) named like the bench's") || !strings.Contains(stderr, benchNamed) {
		t.Errorf("bench beside %s: exit %d, want 1 and an error naming it\n%s\n%s", benchNamed, code, tail(stdout), tail(stderr))
	}
	if got, want := rt.refs(t), []string{benchNamed, other}; !sameRefs(got, want) {
		t.Errorf("after the refusal the store holds %q, want %q", got, want)
	}

	if _, err := rt.images.RemoveImage(context.Background(), &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: benchNamed}}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = criimage(t, nil, append(base, append(benchTiny, "-cases", "pull-1MiB,list-")...)...)
	if code != 0 {
		t.Fatalf("bench beside %s: exit %d\n%s\n%s", other, code, tail(stdout), tail(stderr))
	}
	if got := rt.refs(t); !sameRefs(got, []string{other}) {
		t.Errorf("after the run the store holds %q, want only the user's %s", got, other)
	}
}

// TestBenchInterrupted: Ctrl-C while the bench fills the runtime's store ends the run, and what
// it had pulled is removed before it exits.
func TestBenchInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("pulls images")
	}
	t.Parallel()
	rt := startServe(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "bench", "--image-endpoint", rt.endpoint, "--registry-config-dir", rt.certs,
		"-runs", "1", "-cases", "list-", "-list", "5000", "-fill-par", "2")
	cmd.Env = append(os.Environ(), envBeMain+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Interrupt once the runtime holds some of the bench's images.
	deadline := time.Now().Add(60 * time.Second)
	for len(rt.refs(t)) < 3 {
		select {
		case err := <-done:
			t.Fatalf("bench ended before it was interrupted: %v\n%s", err, tail(stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the bench pulled nothing in 60 s")
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("interrupted bench exited 0")
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("interrupted bench did not exit in 2 min\n%s", tail(stderr.String()))
	}
	if !strings.Contains(stderr.String(), "cleanup: removing") {
		t.Errorf("stderr does not show the cleanup:\n%s", tail(stderr.String()))
	}
	if left := rt.refs(t); len(left) > 0 {
		t.Errorf("after the interrupted bench the runtime still holds %d references, e.g. %q", len(left), left[0])
	}
	if left := rt.certsEntries(t); len(left) > 0 {
		t.Errorf("after the interrupted bench the runtime's certs.d still holds %q", left)
	}
}

// sameRefs: got holds exactly the tags in want (digest references aside).
func sameRefs(got, want []string) bool {
	var tags []string
	for _, r := range got {
		if !strings.Contains(r, "@") {
			tags = append(tags, r)
		}
	}
	slices.Sort(tags)
	want = slices.Sorted(slices.Values(want))
	return slices.Equal(tags, want)
}
