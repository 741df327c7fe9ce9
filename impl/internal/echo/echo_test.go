package echo

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"docker.io/library/busybox:latest", `"docker.io/library/busybox:latest"`},
		{"busybox@sha256:" + strings.Repeat("a", 64), `"busybox@sha256:` + strings.Repeat("a", 64) + `"`},
		{"127.0.0.1:5000/x/y@sha256:abc", `"127.0.0.1:5000/x/y@sha256:abc"`},
		{"user:PASS@registry.example/x:v1", `"<redacted>@registry.example/x:v1"`},
		{"user@registry.example/x", `"<redacted>@registry.example/x"`},
		{"user:pw@127.0.0.1:5000/x:v1", `"<redacted>@127.0.0.1:5000/x:v1"`},
		{"u:pw@sha256:abc", `"u:pw@sha256:abc"`},
		{"https://user:PASS@registry.example/v2/", `"https://<redacted>@registry.example/v2/"`},
		{"https://registry.example/v2/?a=b@c", `"https://registry.example/v2/?a=b@c"`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("x", 1<<20)
	got := Quote(long)
	if len(got) > MaxBytes+40 || !strings.HasSuffix(got, "… (1048576 bytes)") {
		t.Errorf("a 1 MiB input echoed as %d bytes ending %q", len(got), got[len(got)-30:])
	}
	if got := URL("https://u:secret@h/p?token=secret"); strings.Contains(got, "secret") {
		t.Errorf("URL kept a secret: %s", got)
	}
}
