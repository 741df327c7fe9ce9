// Package echo quotes client input for error messages and log lines: a credential that a client
// put where it does not belong (userinfo in a reference or an address) is withheld, and a long
// input is cut, so an echo is never a secret and never megabytes.
package echo

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// MaxBytes is how much of an input an echo shows before cutting it.
const MaxBytes = 256

// digestAfterAt matches what follows the '@' of a reference by digest ("name@sha256:…"): the
// whole rest is a digest (OCI grammar), so "user:pw@127.0.0.1:5000/x" is not one.
var digestAfterAt = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// Quote returns s quoted (%q) for a message: userinfo redacted (Redact), cut to MaxBytes with
// its full length named.
func Quote(s string) string {
	s = Redact(s)
	if len(s) <= MaxBytes {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:MaxBytes], len(s))
}

// Redact withholds userinfo: "scheme://user:pass@host/…" and the reference form
// "user:pass@host/repo" (an '@' before the first '/' that does not introduce a digest) become
// "…<redacted>@host/…".
func Redact(s string) string {
	if i := strings.Index(s, "://"); i > 0 {
		rest := s[i+3:]
		at := strings.LastIndex(rest[:hostEnd(rest)], "@")
		if at >= 0 {
			return s[:i+3] + "<redacted>" + rest[at:]
		}
		return s
	}
	at := strings.Index(s, "@")
	if at < 0 {
		return s
	}
	if slash := strings.Index(s, "/"); slash >= 0 && slash < at {
		return s // "host/repo@digest": the '@' is the reference's own
	}
	if digestAfterAt.MatchString(s[at+1:]) {
		return s // "repo@sha256:…"
	}
	return "<redacted>" + s[at:]
}

// hostEnd is the end of the authority in a URL's remainder after "://".
func hostEnd(rest string) int {
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return i
	}
	return len(rest)
}

// URL returns u's string with userinfo and query values withheld, cut like Quote.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Quote(raw)
	}
	if u.User != nil {
		u.User = url.User("<redacted>")
	}
	if u.RawQuery != "" {
		u.RawQuery = "<redacted>"
	}
	return Quote(u.String())
}
