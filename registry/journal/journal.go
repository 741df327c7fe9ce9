// Package journal records every request a fixture registry listener answers: what was asked,
// what was answered, how many body bytes went out and whether the client left early. Secrets
// (Authorization credentials, token-form fields, secret-looking query values) are never stored:
// the journal keeps keyed HMAC fingerprints made with a random per-journal key, so a test can ask
// "did this listener see this password?" without the password being written anywhere.
package journal

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/route"
)

// Entry is one answered request.
type Entry struct {
	Seq      int64
	Time     time.Time
	Listener route.Listener
	Method   string
	Host     string
	Path     string
	RawQuery string // secret values replaced by fingerprints
	Repo     string
	Kind     route.Kind
	Digest   digest.Digest
	Status   int
	// BytesSent counts response body bytes written.
	BytesSent int64
	// Aborted is set when the client went away (or the handler aborted) before the body was
	// written completely.
	Aborted    bool
	RemoteAddr string
	AuthScheme string   // "", "Basic", "Bearer" (or whatever scheme the client sent)
	Secrets    []string // fingerprints of every credential seen (header, form, query)
}

// maxFormBody bounds how much of a form-encoded request body is examined for secrets.
const maxFormBody = 64 << 10

// Journal is a concurrency-safe request log. The zero value is not usable; call New.
type Journal struct {
	key        []byte
	mu         sync.Mutex
	entries    []Entry // oldest first; Seq dense from entries[0].Seq
	seq        int64
	maxEntries int           // 0: keep every entry
	added      chan struct{} // closed and replaced whenever an entry is added
}

// New returns an empty journal with a fresh random fingerprint key.
func New() (*Journal, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	return &Journal{key: key, added: make(chan struct{})}, nil
}

// SetMaxEntries makes the journal a ring of the newest n entries (0: keep every entry, the
// default — a suite's registry lives for one run; a long-running standalone registry needs a
// bound). Sequence numbers go on counting; Since simply finds fewer old entries.
func (j *Journal) SetMaxEntries(n int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.maxEntries = max(n, 0)
	j.trimLocked()
}

func (j *Journal) trimLocked() {
	if j.maxEntries == 0 || len(j.entries) <= j.maxEntries {
		return
	}
	// Copy out only when the slack reaches the bound: amortized O(1) per entry.
	if len(j.entries) >= 2*j.maxEntries || cap(j.entries) > 4*j.maxEntries {
		j.entries = slices.Clone(j.entries[len(j.entries)-j.maxEntries:])
		return
	}
	j.entries = j.entries[len(j.entries)-j.maxEntries:]
}

// Fingerprint returns the keyed fingerprint of secret, as stored in Entry.Secrets.
func (j *Journal) Fingerprint(secret string) string {
	m := hmac.New(sha256.New, j.key)
	m.Write([]byte(secret))
	return "hmac:" + hex.EncodeToString(m.Sum(nil)[:12])
}

// Entries returns a copy of every entry, oldest first.
func (j *Journal) Entries() []Entry { return j.Since(0) }

// Since returns the entries with Seq > seq.
func (j *Journal) Since(seq int64) []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	i, _ := slices.BinarySearchFunc(j.entries, seq+1, func(e Entry, s int64) int {
		switch {
		case e.Seq < s:
			return -1
		case e.Seq > s:
			return 1
		}
		return 0
	})
	out := make([]Entry, len(j.entries)-i)
	for k, e := range j.entries[i:] {
		e.Secrets = slices.Clone(e.Secrets)
		out[k] = e
	}
	return out
}

// Last returns the sequence number of the newest entry (0 when empty).
func (j *Journal) Last() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq
}

// SawSecret reports whether any request on listener ("" = any listener) carried secret in a
// header, form field or query value.
func (j *Journal) SawSecret(listener route.Listener, secret string) bool {
	fp := j.Fingerprint(secret)
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.entries {
		if (listener == "" || e.Listener == listener) && slices.Contains(e.Secrets, fp) {
			return true
		}
	}
	return false
}

// BlobGets counts the GETs of blob d in repo that completed (2xx) or were aborted. repo "" counts
// every repository and the foreign host.
func (j *Journal) BlobGets(repo string, d digest.Digest) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for _, e := range j.entries {
		if e.Method != http.MethodGet || e.Digest != d {
			continue
		}
		switch {
		case e.Kind == route.KindBlob && (repo == "" || e.Repo == repo):
		case e.Kind == route.KindForeign && repo == "":
		default:
			continue
		}
		if (e.Status >= 200 && e.Status < 300) || e.Aborted {
			n++
		}
	}
	return n
}

// Transcript renders entries one per line; secrets appear only as fingerprints.
func (j *Journal) Transcript(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		target := e.Path
		if e.RawQuery != "" {
			target += "?" + e.RawQuery
		}
		fmt.Fprintf(&b, "#%d %s %s %s %s → %d (%d B)", e.Seq, e.Time.UTC().Format("15:04:05.000"), e.Listener, e.Method, target, e.Status, e.BytesSent)
		if e.Aborted {
			b.WriteString(" ABORTED")
		}
		if e.AuthScheme != "" {
			fmt.Fprintf(&b, " auth=%s", e.AuthScheme)
		}
		if len(e.Secrets) > 0 {
			fmt.Fprintf(&b, " secrets=%s", strings.Join(e.Secrets, ","))
		}
		fmt.Fprintf(&b, " from=%s\n", e.RemoteAddr)
	}
	return b.String()
}

func (j *Journal) add(e Entry) int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	e.Seq = j.seq
	j.entries = append(j.entries, e)
	j.trimLocked()
	close(j.added)
	j.added = make(chan struct{})
	return e.Seq
}

// amend replaces the recorded entry seq with e, when anything changed.
func (j *Journal) amend(seq int64, e Entry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e.Seq = seq
	if len(j.entries) == 0 || seq < j.entries[0].Seq {
		return // already dropped from the ring
	}
	i := int(seq - j.entries[0].Seq) // sequence numbers are dense
	old := j.entries[i]
	e.Time = old.Time
	if old.Status == e.Status && old.BytesSent == e.BytesSent && old.Aborted == e.Aborted && slices.Equal(old.Secrets, e.Secrets) {
		return
	}
	j.entries[i] = e
	close(j.added)
	j.added = make(chan struct{})
}

// WaitFor blocks until an entry with Seq > since satisfies match (entries already recorded count)
// and returns it, or returns ctx's error. An entry is recorded when its handler returns, which can
// be after the client saw its answer or gave up: tests use WaitFor instead of sleeping.
func (j *Journal) WaitFor(ctx context.Context, since int64, match func(Entry) bool) (Entry, error) {
	for {
		j.mu.Lock()
		added := j.added
		j.mu.Unlock()
		for _, e := range j.Since(since) {
			if match(e) {
				return e, nil
			}
			since = e.Seq
		}
		select {
		case <-added:
		case <-ctx.Done():
			return Entry{}, fmt.Errorf("journal: no matching entry after #%d: %w", since, ctx.Err())
		}
	}
}

// secretName reports whether a query or form field name carries a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "password", "passwd", "secret", "sig", "auth", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Middleware records every request on listener, then passes it to next. It must be the
// outermost layer: it sees what the client sent and what finally went out.
func (j *Journal) Middleware(listener route.Listener, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := route.Parse(r.URL.Path)
		e := Entry{
			Time: time.Now(), Listener: listener, Method: r.Method, Host: r.Host, Path: r.URL.Path,
			Repo: rt.Repo, Kind: rt.Kind, Digest: rt.Digest, RemoteAddr: r.RemoteAddr,
		}
		var secrets []string
		addSecret := func(s string) {
			if s == "" {
				return
			}
			if fp := j.Fingerprint(s); !slices.Contains(secrets, fp) {
				secrets = append(secrets, fp)
			}
		}
		for _, h := range []string{"Authorization", "Proxy-Authorization"} {
			for _, v := range r.Header.Values(h) {
				if scheme := authCredentials(v, addSecret); h == "Authorization" && e.AuthScheme == "" {
					e.AuthScheme = scheme
				}
			}
		}
		e.RawQuery = redactQuery(r.URL.RawQuery, addSecret)

		// Tee the body: the handler reads it as usual, the journal keeps a bounded copy.
		var body *bytes.Buffer
		if isForm(r) && r.Body != nil {
			body = &bytes.Buffer{}
			r.Body = teeBody{Reader: io.TeeReader(r.Body, &limitedWriter{w: body, n: maxFormBody}), Closer: r.Body}
		}
		formSecrets := func() {
			if body == nil {
				return
			}
			if vals, err := url.ParseQuery(body.String()); err == nil {
				for k, vs := range vals {
					if secretName(k) {
						for _, v := range vs {
							addSecret(v)
						}
					}
				}
			}
		}
		rw := &recorder{ResponseWriter: w, ctx: r.Context()}
		// fill completes e from what the response did so far.
		fill := func(p any) {
			formSecrets()
			// The client went away before any answer (e.g. while a gate held the request).
			goneBeforeAnswer := !rw.wroteHeader && r.Context().Err() != nil
			e.Status = rw.status
			if e.Status == 0 && p == nil && !goneBeforeAnswer {
				e.Status = http.StatusOK // net/http answers 200 for a handler that wrote nothing
			}
			e.BytesSent = rw.written
			short := rw.contentLength >= 0 && rw.written < rw.contentLength &&
				r.Method != http.MethodHead && e.Status != http.StatusNotModified
			// A cancelled context after a complete answer is just the client closing the
			// connection; it counts only when the body was still being written.
			e.Aborted = p != nil || rw.writeErr != nil || rw.wroteAfterGone || goneBeforeAnswer || short
			e.Secrets = slices.Clone(secrets)
		}
		// A body with a Content-Length is recorded just before its last bytes are handed on, so
		// the entry exists before the client can see the end of the body (net/http may send
		// large writes straight to the connection, before the handler returns). The entry is
		// amended if that write fails or the handler goes on to fail.
		var seq int64
		rw.beforeLastWrite = func(n int) {
			rw.written += int64(n) // counted as sent; undone below
			fill(nil)
			rw.written -= int64(n)
			seq = j.add(e)
		}
		defer func() {
			p := recover()
			if body != nil {
				// Whatever the handler left unread is still the client's form: read it (bounded).
				_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxFormBody))
			}
			fill(p)
			if seq == 0 {
				j.add(e)
			} else {
				j.amend(seq, e)
			}
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

// authCredentials fingerprints the credentials of one Authorization value and returns its scheme.
func authCredentials(v string, add func(string)) string {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(v), " ")
	cred = strings.TrimSpace(cred)
	add(cred)
	if strings.EqualFold(scheme, "Basic") {
		scheme = "Basic"
		if dec, err := base64.StdEncoding.DecodeString(cred); err == nil {
			pair := string(dec)
			add(pair)
			if _, pass, ok := strings.Cut(pair, ":"); ok {
				add(pass) // the password alone (or an identity token sent as ":"+token)
			}
		}
	} else if strings.EqualFold(scheme, "Bearer") {
		scheme = "Bearer"
	}
	return scheme
}

// redactQuery replaces secret-looking query values by their fingerprints.
func redactQuery(raw string, add func(string)) string {
	if raw == "" {
		return ""
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		// Unparseable query: keep nothing that could be a secret.
		add(raw)
		return "<unparseable query>"
	}
	changed := false
	for k, vs := range vals {
		if !secretName(k) {
			continue
		}
		for i, v := range vs {
			add(v)
			vs[i] = "<" + fingerprintPlaceholder + ">"
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return vals.Encode()
}

// fingerprintPlaceholder marks a redacted query value; the fingerprint is in Entry.Secrets.
const fingerprintPlaceholder = "redacted"

func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

type teeBody struct {
	io.Reader
	io.Closer
}

type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		if len(p) > room {
			l.w.Write(p[:room])
		} else {
			l.w.Write(p)
		}
	}
	return len(p), nil
}

// recorder captures the status, body bytes and write errors of a response.
type recorder struct {
	http.ResponseWriter
	ctx             context.Context
	beforeLastWrite func(n int) // called once, before the write that completes a Content-Length body
	wroteAfterGone  bool        // a body write came after the client went away
	status          int
	written         int64
	writeErr        error
	contentLength   int64
	wroteHeader     bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.wroteHeader = true
		r.status = code
		r.contentLength = -1
		if cl := r.Header().Get("Content-Length"); cl != "" {
			fmt.Sscan(cl, &r.contentLength)
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	if r.ctx.Err() != nil {
		r.wroteAfterGone = true
	}
	if r.beforeLastWrite != nil && r.contentLength > 0 && r.written < r.contentLength && r.written+int64(len(p)) >= r.contentLength {
		r.beforeLastWrite(len(p))
		r.beforeLastWrite = nil
	}
	n, err := r.ResponseWriter.Write(p)
	r.written += int64(n)
	if err != nil && r.writeErr == nil {
		r.writeErr = err
	}
	return n, err
}

// Flush passes flushes through (drip faults, streaming).
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (hijack for reset faults).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
