package report_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/report"
)

// The browser check: report.html as a real browser (headless Chromium) builds it, with and
// without its script, checked against results.json by the checks of htmlcheck_test.go.
//
//	CRIIMAGE_CHROMIUM          the browser (default /usr/bin/chromium)
//	CRIIMAGE_REQUIRE_BROWSER=1 a missing browser fails the test instead of skipping it (CI)
//	CRIIMAGE_CHECK_REPORT_DIR  also check this report directory, from a real run (make report-browser-check)
//
// The last is not CRIIMAGE_REPORT_DIR: config.Default reads that one as the suite's own report
// directory, and a `go test ./...` with it set would run the suite writing into the directory
// while this test reads it.

const defaultChromium = "/usr/bin/chromium"

// browserTimeout bounds one Chromium run; a run takes about a second.
const browserTimeout = 30 * time.Second

// chromium runs headless Chromium, each run with its own profile.
type chromium struct{ path string }

// findChromium returns the browser, or skips the test (fails it under CRIIMAGE_REQUIRE_BROWSER=1).
func findChromium(t *testing.T) chromium {
	t.Helper()
	path := os.Getenv("CRIIMAGE_CHROMIUM")
	if path == "" {
		path = defaultChromium
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CRIIMAGE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("chromium not found at %s (%v) and CRIIMAGE_REQUIRE_BROWSER=1: apt-get install chromium", path, err)
		}
		t.Skipf("chromium not found at %s: apt-get install chromium to run the browser check", path)
	}
	return chromium{path: path}
}

// run runs the browser on url with extra flags and returns its standard output. The browser and
// its helper processes (one process group) are killed when the run exceeds browserTimeout.
func (c chromium) run(t *testing.T, url string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking"}, flags...)
	cmd := exec.CommandContext(ctx, c.path, append(args, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("chromium %v: %s", flags, time.Since(start).Round(time.Millisecond))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("killed after %s: %w", browserTimeout, err)
		}
		t.Fatalf("chromium %v %s: %v\n%s", flags, url, err, tail(stderr.Bytes(), 2000))
	}
	return stdout.Bytes()
}

// dumpDOM returns the DOM the browser built from url, after the page's scripts ran.
func (c chromium) dumpDOM(t *testing.T, url string) page {
	t.Helper()
	dom := c.run(t, url, "--dump-dom")
	if len(bytes.TrimSpace(dom)) == 0 {
		t.Fatalf("chromium dumped an empty DOM for %s", url)
	}
	p, err := readPage(dom)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dumpDOMWithoutScript returns the DOM of dir's report.html as a browser without scripting
// builds it. --blink-settings=scriptEnabled=false cannot give it: --dump-dom reads the DOM by
// evaluating a script itself, and Chromium 156 then dumps nothing. The page is served from a
// loopback server whose Content-Security-Policy header forbids every script instead (the
// DevTools evaluation is exempt); the caller checks that the page's script did not run.
func (c chromium) dumpDOMWithoutScript(t *testing.T, dir string) page {
	t.Helper()
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "script-src 'none'")
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	return c.dumpDOM(t, srv.URL+"/report.html")
}

// screenshot renders url at 1280×2000 and checks that the PNG is an image of that size with
// more than one colour.
func (c chromium) screenshot(t *testing.T, url string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.png")
	c.run(t, url, "--screenshot="+path, "--window-size=1280,2000", "--hide-scrollbars")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot is %v, want 1280×2000", b)
	}
	if n := colours(img); n < 4 {
		t.Errorf("screenshot has %d colours: a blank page", n)
	}
}

// colours counts the distinct colours of img (up to 100).
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(seen) < 100; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}

// checkDir checks a report directory in the browser: every row of results.json and the counts,
// with the page's script and without it; returns the scripted view.
func checkDir(t *testing.T, c chromium, dir string) page {
	t.Helper()
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	results, err := readResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 {
		t.Fatalf("%s/results.json lists no spec", dir)
	}
	url := "file://" + filepath.Join(dir, "report.html")
	views := []struct {
		name   string
		page   page
		script bool
	}{
		{"with script", c.dumpDOM(t, url), true},
		{"without script", c.dumpDOMWithoutScript(t, dir), false},
	}
	for _, v := range views {
		for _, problem := range problems(v.page, results, harness.FixtureSecrets()) {
			t.Errorf("%s: %s", v.name, problem)
		}
		if v.page.filterHidden == v.script {
			t.Errorf("%s: the filter is hidden=%v: the page's script ran=%v", v.name, v.page.filterHidden, !v.page.filterHidden)
		}
		if len(v.page.hiddenRows) > 0 {
			t.Errorf("%s: rows hidden with every outcome selected: %v", v.name, v.page.hiddenRows)
		}
	}
	return views[0].page
}

// TestReportInChromium opens report.html in headless Chromium: the synthetic report (every
// outcome, transcripts, expectations), its outcome filter, a screenshot, a page with a leaked
// secret (the check must catch it), and the report directory CRIIMAGE_CHECK_REPORT_DIR names.
func TestReportInChromium(t *testing.T) {
	c := findChromium(t)
	t.Run("synthetic", func(t *testing.T) {
		t.Parallel() // Chromium takes a second or more to start: the runs overlap
		s := writeSynthetic(t, false)
		checkSynthetic(t, s, checkDir(t, c, s.dir))
		c.screenshot(t, "file://"+filepath.Join(s.dir, "report.html"))
	})
	t.Run("filter", func(t *testing.T) {
		t.Parallel() // Chromium takes a second or more to start: the runs overlap
		s := writeSynthetic(t, false)
		show := []string{report.Failed, report.UnexpectedPass}
		p := c.dumpDOM(t, "file://"+filepath.Join(s.dir, "report.html")+"#show=failed,unexpected-pass")
		for _, r := range p.rows {
			if want := !slices.Contains(show, r.Outcome); p.hiddenRows[r.ID] != want {
				t.Errorf("#show=failed,unexpected-pass: %s (%s) hidden=%v, want %v", r.ID, r.Outcome, p.hiddenRows[r.ID], want)
			}
		}
	})
	t.Run("a leaked secret is caught", func(t *testing.T) {
		t.Parallel() // Chromium takes a second or more to start: the runs overlap
		s := writeSynthetic(t, true)
		p := c.dumpDOM(t, "file://"+filepath.Join(s.dir, "report.html"))
		if got := leakedSecrets(p.text, harness.FixtureSecrets()); !slices.Equal(got, []string{"fixture password"}) {
			t.Errorf("secrets found in the browser's DOM of a page with the fixture password: %q", got)
		}
	})
	t.Run("real report", func(t *testing.T) {
		t.Parallel() // Chromium takes a second or more to start: the runs overlap
		dir := os.Getenv("CRIIMAGE_CHECK_REPORT_DIR")
		if dir == "" {
			t.Skip("CRIIMAGE_CHECK_REPORT_DIR not set (make report-browser-check sets it)")
		}
		p := checkDir(t, c, dir)
		t.Logf("%s: %d rows checked", dir, len(p.rows))
	})
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
