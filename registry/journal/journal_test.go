package journal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/journal"
	"github.com/criimage/criimage/registry/route"
)

// server runs h behind the journal on a real loopback listener; done receives after the journal
// has recorded each request.
func server(t *testing.T, j *journal.Journal, h http.Handler) (*httptest.Server, chan struct{}) {
	t.Helper()
	done := make(chan struct{}, 16)
	mw := j.Middleware(route.ListenerPlain, h)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		mw.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

func newJournal(t *testing.T) *journal.Journal {
	j, err := journal.New()
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestSecretsAreFingerprintedNeverStored(t *testing.T) {
	j := newJournal(t)
	var gotForm url.Values
	srv, done := server(t, j, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" && r.Method == "POST" {
			if err := r.ParseForm(); err != nil {
				t.Error(err)
			}
			gotForm = r.PostForm
		}
		_, _ = io.WriteString(w, "ok")
	}))
	const (
		user     = "criimage"
		password = "pw-Secret-1"
		bearer   = "bearer-Secret-2"
		refresh  = "refresh-Secret-3"
		qtoken   = "query-Secret-4"
		unread   = "unread-Secret-5"
	)
	send := func(req *http.Request) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		<-done
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v2/basic/x/manifests/latest", nil)
	req.SetBasicAuth(user, password)
	send(req)
	req, _ = http.NewRequest("GET", srv.URL+"/v2/token/x/blobs/"+digest.FromString("x").String(), nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	send(req)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"containerd-client"}}
	req, _ = http.NewRequest("POST", srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	send(req)
	// A handler that never reads the form: the journal still sees it.
	form = url.Values{"grant_type": {"password"}, "username": {user}, "password": {unread}}
	req, _ = http.NewRequest("POST", srv.URL+"/elsewhere", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	send(req)
	send(mustReq(t, "GET", srv.URL+"/token?scope=repository:a:pull&access_token="+qtoken+"&service=x"))

	if gotForm.Get("refresh_token") != refresh {
		t.Errorf("handler saw form %v: the journal consumed the body", gotForm)
	}
	for _, c := range []struct {
		secret string
		want   bool
	}{
		{password, true}, {user + ":" + password, true}, {bearer, true}, {refresh, true},
		{qtoken, true}, {unread, true}, {"never-sent", false},
	} {
		if got := j.SawSecret(route.ListenerPlain, c.secret); got != c.want {
			t.Errorf("SawSecret(plain, %q) = %v, want %v", c.secret, got, c.want)
		}
		if j.SawSecret(route.ListenerTLS, c.secret) {
			t.Errorf("SawSecret(tls, %q): wrong listener", c.secret)
		}
	}
	entries := j.Entries()
	dump, _ := json.Marshal(entries)
	text := string(dump) + j.Transcript(entries)
	for _, s := range []string{password, bearer, refresh, qtoken, unread} {
		if strings.Contains(text, s) {
			t.Errorf("secret %q stored in the journal", s)
		}
	}
	if entries[0].AuthScheme != "Basic" || entries[1].AuthScheme != "Bearer" || entries[2].AuthScheme != "" {
		t.Errorf("auth schemes: %q %q %q", entries[0].AuthScheme, entries[1].AuthScheme, entries[2].AuthScheme)
	}
	q, _ := url.ParseQuery(entries[4].RawQuery)
	if q.Get("scope") != "repository:a:pull" || q.Get("access_token") == qtoken || q.Get("access_token") == "" {
		t.Errorf("redacted query %q", entries[4].RawQuery)
	}
	if entries[1].Kind != "blob" || entries[1].Repo != "token/x" || entries[1].Digest != digest.FromString("x") {
		t.Errorf("classification: %+v", entries[1])
	}
	other := newJournal(t)
	if other.Fingerprint(password) == j.Fingerprint(password) {
		t.Error("fingerprints are not keyed per journal")
	}
}

func mustReq(t *testing.T, method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestAbortedAndBlobGets(t *testing.T) {
	j := newJournal(t)
	d := digest.FromString("layer")
	body := strings.Repeat("x", 1<<20)
	var firstSent chan struct{}
	srv, done := server(t, j, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/abort"):
			if !strings.HasSuffix(r.URL.Path, "chunked") {
				w.Header().Set("Content-Length", "1048576")
			}
			_, _ = io.WriteString(w, body[:1024])
			w.(http.Flusher).Flush()
			close(firstSent)
			<-r.Context().Done() // the client hung up
			for range 64 {       // the rest cannot go out
				if _, err := io.WriteString(w, body[:16<<10]); err != nil {
					return
				}
			}
		case strings.HasSuffix(r.URL.Path, "/panic"):
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "12345")
			panic(http.ErrAbortHandler)
		case strings.Contains(r.URL.Path, "/missing/"):
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Length", "1048576")
			_, _ = io.WriteString(w, body)
		}
	}))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		<-done
	}
	get("/v2/anon/a/blobs/" + d.String())
	resp, err := client.Head(srv.URL + "/v2/anon/a/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	<-done
	get("/v2/anon/missing/blobs/" + d.String())

	// Client reads the first KiB and hangs up (with and without Content-Length).
	for _, p := range []string{"/abort", "/abort-chunked"} {
		firstSent = make(chan struct{})
		resp, err = client.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		<-firstSent
		if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		<-done
	}

	// Handler aborts mid-body.
	resp, err = client.Get(srv.URL + "/panic")
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("client saw a complete body from an aborted handler")
	}
	<-done

	e := j.Entries()
	if len(e) != 6 {
		t.Fatalf("%d entries", len(e))
	}
	if e[0].Aborted || e[0].BytesSent != 1<<20 || e[0].Status != 200 {
		t.Errorf("complete GET: %+v", e[0])
	}
	if e[1].Aborted || e[1].Method != "HEAD" {
		t.Errorf("HEAD: %+v", e[1])
	}
	if !e[3].Aborted || e[3].BytesSent >= 1<<20 {
		t.Errorf("client hang-up not recorded as aborted: aborted=%v sent=%d", e[3].Aborted, e[3].BytesSent)
	}
	if !e[4].Aborted || e[4].BytesSent >= 1<<20 {
		t.Errorf("client hang-up (chunked) not recorded as aborted: aborted=%v sent=%d", e[4].Aborted, e[4].BytesSent)
	}
	if !e[5].Aborted || e[5].BytesSent != 5 {
		t.Errorf("handler abort: aborted=%v sent=%d", e[5].Aborted, e[5].BytesSent)
	}
	if n := j.BlobGets("anon/a", d); n != 1 {
		t.Errorf("BlobGets(anon/a) = %d, want 1 (HEAD and 404 do not count)", n)
	}
	if n := j.BlobGets("anon/missing", d); n != 0 {
		t.Errorf("BlobGets(anon/missing) = %d, want 0", n)
	}
	if j.Last() != 6 || len(j.Since(3)) != 3 || j.Since(3)[0].Seq != 4 {
		t.Errorf("Last %d, Since(3) %v", j.Last(), j.Since(3))
	}
	tr := j.Transcript(e)
	if strings.Count(tr, "\n") != 6 || !strings.Contains(tr, "ABORTED") {
		t.Errorf("transcript:\n%s", tr)
	}
}

// A request whose client leaves before any answer (held by a gate) is aborted with status 0.
func TestClientGoneBeforeAnswer(t *testing.T) {
	j := newJournal(t)
	held := make(chan struct{})
	srv, done := server(t, j, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(held)
		<-r.Context().Done()
	}))
	req := mustReq(t, "GET", srv.URL+"/v2/anon/a/manifests/latest")
	ctx, cancel := context.WithCancel(t.Context())
	req = req.WithContext(ctx)
	go func() {
		<-held
		cancel()
	}()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request succeeded")
	}
	<-done
	e := j.Entries()
	if len(e) != 1 || !e[0].Aborted || e[0].Status != 0 {
		t.Fatalf("entry %+v, want aborted with status 0", e)
	}
}

func TestWaitFor(t *testing.T) {
	j := newJournal(t)
	srv, _ := server(t, j, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	got := make(chan journal.Entry, 1)
	go func() {
		e, err := j.WaitFor(t.Context(), 0, func(e journal.Entry) bool { return e.Path == "/second" })
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	for _, p := range []string{"/first", "/second"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if e := <-got; e.Seq != 2 {
		t.Fatalf("WaitFor returned %+v", e)
	}
	// Already recorded entries count; since excludes older ones.
	if e, err := j.WaitFor(t.Context(), 0, func(e journal.Entry) bool { return e.Path == "/first" }); err != nil || e.Seq != 1 {
		t.Fatalf("existing entry: %+v %v", e, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := j.WaitFor(ctx, 1, func(e journal.Entry) bool { return e.Path == "/first" }); err == nil {
		t.Fatal("WaitFor matched an entry before since")
	}
}

// An entry for a Content-Length body exists by the time the client has read the whole body, even
// if the handler has not returned yet (large writes reach the connection directly).
func TestRecordedBeforeClientSeesEndOfBody(t *testing.T) {
	j := newJournal(t)
	release := make(chan struct{})
	body := strings.Repeat("y", 1<<20)
	srv, done := server(t, j, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1048576")
		_, _ = io.WriteString(w, body)
		w.(http.Flusher).Flush()
		<-release
	}))
	resp, err := http.Get(srv.URL + "/v2/anon/a/blobs/" + digest.FromString(body).String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 1<<20 {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	e := j.Entries()
	close(release)
	<-done
	if len(e) != 1 || e[0].Aborted || e[0].BytesSent != 1<<20 || e[0].Status != 200 {
		t.Fatalf("entries while the handler still runs: %+v", e)
	}
	if after := j.Entries(); len(after) != 1 || after[0].Aborted {
		t.Fatalf("after the handler returned: %+v", after)
	}
}

// A bounded journal keeps the newest entries, goes on numbering, and ignores amends of dropped ones.
func TestJournalRing(t *testing.T) {
	j, err := journal.New()
	if err != nil {
		t.Fatal(err)
	}
	j.SetMaxEntries(3)
	h := j.Middleware(route.ListenerPlain, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for i := 0; i < 10; i++ {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", fmt.Sprintf("/v2/anon/r/manifests/t%d", i), nil))
	}
	got := j.Entries()
	if len(got) != 3 || got[0].Seq != 8 || got[2].Seq != 10 || j.Last() != 10 {
		t.Fatalf("ring holds %d entries, seqs %d..%d, last %d", len(got), got[0].Seq, got[len(got)-1].Seq, j.Last())
	}
	if s := j.Since(9); len(s) != 1 || s[0].Seq != 10 {
		t.Errorf("Since(9) = %v", s)
	}
	if s := j.Since(2); len(s) != 3 {
		t.Errorf("Since(2) after the ring dropped 1..7: %d entries", len(s))
	}
}
