package control_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/control"
)

func setup(t *testing.T) (*registry.Registry, *control.Server) {
	reg, err := registry.Start(t.Context(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	srv, err := control.Start(t.Context(), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return reg, srv
}

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestFaultsOverControl(t *testing.T) {
	reg, srv := setup(t)
	if _, err := reg.PutManifest("anon/ctl", "v1", "application/vnd.docker.distribution.manifest.v2+json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`)); err != nil {
		t.Fatal(err)
	}
	manifest := "http://" + reg.PlainHost() + "/v2/anon/ctl/manifests/v1"
	get := func() int {
		resp, err := http.Get(manifest)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 200 {
		t.Fatalf("before: %d", s)
	}
	st, out := call(t, "POST", srv.URL()+"/faults", `{"match":{"repo":"anon/ctl","kind":"manifest"},"action":{"kind":"status","status":503},"times":1}`)
	if st != 200 || out["id"] == "" {
		t.Fatalf("arm: %d %v", st, out)
	}
	if s := get(); s != 503 {
		t.Errorf("armed: %d, want 503", s)
	}
	if s := get(); s != 200 {
		t.Errorf("after times=1: %d, want 200", s)
	}
	call(t, "POST", srv.URL()+"/faults", `{"match":{"repo":"anon/ctl"},"action":{"kind":"status","status":500}}`)
	if st, _ := call(t, "DELETE", srv.URL()+"/faults", ""); st != 200 {
		t.Fatalf("clear all: %d", st)
	}
	if s := get(); s != 200 {
		t.Errorf("after clear: %d", s)
	}

	st, out = call(t, "GET", srv.URL()+"/journal/blob-gets?digest=sha256:nope", "")
	if st != 400 || !strings.Contains(out["error"].(string), "sha256:nope") {
		t.Errorf("bad digest: %d %v", st, out)
	}
	for _, bad := range []struct{ method, path, body string }{
		{"POST", "/faults", `{"action":{"kind":"explode"}}`},
		{"POST", "/faults", `{"action":{"kind":"drip","dripEvery":"soon"}}`},
		{"POST", "/faults", `{"action":{"kind":"status"},"times":-1}`},
		{"POST", "/faults", `{not json`},
		{"POST", "/faults", `{"bogus":1}`},
		{"POST", "/tokens/expires-in", `{"duration":"-5s"}`},
		{"GET", "/journal?since=x", ""},
	} {
		st, out := call(t, bad.method, srv.URL()+bad.path, bad.body)
		if st != 400 || out["error"] == nil {
			t.Errorf("%s %s %s: %d %v, want 400 with an error", bad.method, bad.path, bad.body, st, out)
		}
	}
	if st, _ := call(t, "GET", srv.URL()+"/nothing", ""); st != 404 {
		t.Errorf("unknown path: %d", st)
	}
	if st, _ := call(t, "GET", srv.URL()+"/faults", ""); st != 405 {
		t.Errorf("GET /faults: %d", st)
	}
}

func TestJournalAndTokensOverControl(t *testing.T) {
	reg, srv := setup(t)
	req, _ := http.NewRequest("GET", "http://"+reg.PlainHost()+"/v2/", nil)
	req.SetBasicAuth("someone", "pass-over-control")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	st, out := call(t, "POST", srv.URL()+"/journal/saw-secret", `{"listener":"plain","secret":"pass-over-control"}`)
	if st != 200 || out["seen"] != true {
		t.Errorf("saw-secret: %d %v", st, out)
	}
	st, out = call(t, "POST", srv.URL()+"/journal/saw-secret", `{"listener":"foreign","secret":"pass-over-control"}`)
	if st != 200 || out["seen"] != false {
		t.Errorf("saw-secret foreign: %d %v", st, out)
	}
	r2, err := http.Get(srv.URL() + "/journal")
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	if err := json.NewDecoder(r2.Body).Decode(&entries); err != nil || len(entries) != 1 {
		t.Errorf("journal: %v %v", entries, err)
	}
	r2.Body.Close()
	st, out = call(t, "POST", srv.URL()+"/tokens/refresh", "")
	if st != 200 || out["refresh_token"] == "" {
		t.Errorf("refresh token: %d %v", st, out)
	}
	st, out = call(t, "POST", srv.URL()+"/tokens/registry", `{"scope":"repository:regtoken/x:pull"}`)
	if st != 200 || out["token"] == "" {
		t.Errorf("registry token: %d %v", st, out)
	}
	if st, _ := call(t, "POST", srv.URL()+"/tokens/revoke", ""); st != 200 {
		t.Errorf("revoke: %d", st)
	}
	st, out = call(t, "GET", srv.URL()+"/endpoints", "")
	if st != 200 || out["plain"] != reg.PlainHost() || out["caFile"] != reg.CAFile() {
		t.Errorf("endpoints: %v", out)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	reg, _ := setup(t)
	if _, err := control.Start(t.Context(), "0.0.0.0:0", reg); err == nil {
		t.Fatal("control listened on 0.0.0.0")
	}
}

// A page in a local browser cannot drive the control API: not through DNS rebinding (Host), not
// cross-site (Origin, Sec-Fetch-Site), not with a text/plain POST (no CORS preflight).
func TestControlRefusesBrowsers(t *testing.T) {
	_, srv := setup(t)
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		host   string
		status int
	}{
		{"rebinding Host", map[string]string{"Content-Type": "application/json"}, "evil.example", http.StatusForbidden},
		{"cross-site Origin", map[string]string{"Content-Type": "application/json", "Origin": "http://evil"}, "", http.StatusForbidden},
		{"cross-site fetch", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, "", http.StatusForbidden},
		{"text/plain body", map[string]string{"Content-Type": "text/plain"}, "", http.StatusUnsupportedMediaType},
		{"tool", map[string]string{"Content-Type": "application/json"}, "", http.StatusOK},
	} {
		req, _ := http.NewRequest("POST", srv.URL()+"/tokens/refresh", strings.NewReader("{}"))
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, b, tc.status)
		}
		if tc.status != http.StatusOK && strings.Contains(string(b), "refresh_token") {
			t.Errorf("%s: issued a token: %s", tc.name, b)
		}
	}
	// GET from a tool on localhost:PORT works too.
	req, _ := http.NewRequest("GET", srv.URL()+"/endpoints", nil)
	req.Host = "localhost:" + srv.URL()[strings.LastIndex(srv.URL(), ":")+1:]
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET via localhost: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
