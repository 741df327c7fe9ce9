package expectations

import "testing"

func TestJudge(t *testing.T) {
	f, err := Parse([]byte(`
target: demo
expectations:
  - id: AUTH-012
    reason: echoes secret
    issue: https://example.invalid/1
  - id: FMT-001
    reason: no schema1
    outcome: unsupported
  - id: RM-009
    reason: fixed upstream
  - id: LIST-099
    reason: filtered out
`))
	if err != nil {
		t.Fatal(err)
	}
	v := f.Judge(map[string]string{
		"AUTH-012": "expected-failure", // failed as expected
		"FMT-001":  "unsupported",      // expected unsupported
		"RM-009":   "unexpected-pass",  // the wrapper failed it: the expected failure now passes
		"PULL-001": "failed",           // unexpected
		"PULL-002": "passed",
	})
	if v.OK() {
		t.Fatal("verdict OK despite an unexpected failure and an unexpected pass")
	}
	if len(v.UnexpectedFailures) != 1 || v.UnexpectedFailures[0] != "PULL-001" {
		t.Errorf("unexpected failures %v", v.UnexpectedFailures)
	}
	if len(v.UnexpectedPasses) != 1 || v.UnexpectedPasses[0].ID != "RM-009" {
		t.Errorf("unexpected passes %v", v.UnexpectedPasses)
	}
	if len(v.ExpectedFailures) != 2 {
		t.Errorf("expected failures %v", v.ExpectedFailures)
	}
	if len(v.NotRun) != 1 || v.NotRun[0].ID != "LIST-099" {
		t.Errorf("not run %v", v.NotRun)
	}
	// A listed spec that failed outside the wrapper (a cleanup hook) is not covered by the file.
	if v := f.Judge(map[string]string{"AUTH-012": "failed"}); len(v.UnexpectedFailures) != 1 || len(v.UnexpectedPasses) != 0 {
		t.Errorf("listed spec failed outside the wrapper: %+v", v)
	}
	if ok := f.Judge(map[string]string{"AUTH-012": "expected-failure", "FMT-001": "unsupported"}); !ok.OK() {
		t.Errorf("clean run judged bad: %s", ok)
	}
}

func TestParseRejects(t *testing.T) {
	for _, bad := range []string{
		"expectations: [{id: lower-1, reason: x}]",
		"expectations: [{id: AUTH-001}]",
		"expectations: [{id: AUTH-001, reason: x}, {id: AUTH-001, reason: y}]",
		"expectations: [{id: AUTH-001, reason: x, outcome: flaky}]",
		"expectation: []",
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestJudgeEither(t *testing.T) {
	f, err := Parse([]byte(`
expectations:
  - id: FAIL-002
    reason: containerd's background GC decides whether the corrupt blob is gone before the retry
    outcome: either
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{"passed", "expected-failure"} {
		if v := f.Judge(map[string]string{"FAIL-002": got}); !v.OK() {
			t.Errorf("either with %s: %s", got, v)
		}
	}
	// A failure the wrapper did not intercept (e.g. a panic in cleanup) still fails the run.
	if v := f.Judge(map[string]string{"FAIL-002": "failed"}); v.OK() {
		t.Error("either with a plain failure was judged OK")
	}
}
