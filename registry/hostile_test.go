package registry_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/store"
)

// Regressions from hostile testing of `criimage registry`: each case failed before its fix.

// A cross-repository mount needs pull rights on the source: without them the POST starts a plain
// upload (202) and the protected blob stays unreadable from the target repository.
func TestMountNeedsPullOnSource(t *testing.T) {
	reg := start(t, registry.Options{})
	secret := []byte("protected layer bytes")
	d, err := reg.PutBlob("basic/small", secret)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + reg.PlainHost()
	for _, tc := range []struct {
		name     string
		hdr      map[string]string
		repo     string
		status   int
		readable bool
	}{
		{"anonymous", nil, "anon/x", http.StatusAccepted, false},
		{"wrong password", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(auth.FixtureUser+":nope"))}, "anon/y", http.StatusAccepted, false},
		{"fixture user", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(auth.FixtureUser+":"+auth.FixturePassword))}, "anon/z", http.StatusCreated, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, "POST", base+"/v2/"+tc.repo+"/blobs/uploads/?mount="+d.String()+"&from=basic/small", tc.hdr, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("mount: %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			resp, _ = do(t, "GET", base+"/v2/"+tc.repo+"/blobs/"+d.String(), nil, nil)
			if got := resp.StatusCode == http.StatusOK; got != tc.readable {
				t.Errorf("blob readable anonymously from %s after the mount: %v, want %v", tc.repo, got, tc.readable)
			}
		})
	}
	// The journal shows what the client asked for, not what the registry made of it.
	var asked bool
	for _, e := range reg.Journal().Entries() {
		if e.Method == "POST" && e.Repo == "anon/x" && e.RawQuery != "" {
			asked = true
		}
	}
	if !asked {
		t.Error("the journal lost the mount query of the refused mount")
	}
}

// Range requests the blob cannot satisfy answer 416, never an empty 206.
func TestUnsatisfiableRange(t *testing.T) {
	reg := start(t, registry.Options{})
	d, err := reg.PutBlob("anon/range", make([]byte, 228))
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + reg.PlainHost() + "/v2/anon/range/blobs/" + d.String()
	for _, tc := range []struct {
		rng, contentRange string
		status            int
	}{
		{"bytes=-0", "bytes */228", 416},
		{"bytes=-0,-0", "bytes */228", 416},
		{"bytes=228-", "bytes */228", 416},
		{"bytes=-10", "bytes 218-227/228", 206},
		{"bytes=0-9", "bytes 0-9/228", 206},
		{"bytes=-0,0-9", "bytes 0-9/228", 206},
	} {
		resp, body := do(t, "GET", url, map[string]string{"Range": tc.rng}, nil)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.contentRange {
			t.Errorf("Range %s: %d Content-Range %q (%d body bytes), want %d %q", tc.rng, resp.StatusCode,
				resp.Header.Get("Content-Range"), len(body), tc.status, tc.contentRange)
		}
		if tc.status == 416 {
			if code, _ := errCode(body); code != "RANGE_INVALID" {
				t.Errorf("Range %s: error code %q", tc.rng, code)
			}
		}
	}
}

// Malformed scopes get 400 from the token service, not a token.
func TestTokenRejectsMalformedScopes(t *testing.T) {
	reg := start(t, registry.Options{})
	base := "http://" + reg.PlainHost() + "/token?service=" + reg.Auth().ServiceName() + "&scope="
	for _, scope := range []string{"%00%ff:::", "repository:anon/Case:pull", "repository:a/b:pull%00", "repository::pull",
		"repo%20sitory:a:pull", "repository:a/../b:pull", "%ff:a:pull"} {
		resp, body := do(t, "GET", base+scope, nil, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("scope %s: %d %s, want 400", scope, resp.StatusCode, body)
		}
	}
	for _, scope := range []string{"repository:anon/a:pull", "repository(plugin):anon/a:pull,push", "registry:catalog:*", "repository:library/busybox:pull"} {
		if resp, body := do(t, "GET", base+scope, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("scope %s: %d %s, want 200", scope, resp.StatusCode, body)
		}
	}
}

// Upload sessions are bounded: a session that grows too large answers 413 DENIED (and is gone),
// one session too many answers 429 TOOMANYREQUESTS with Retry-After.
func TestUploadLimitsOverHTTP(t *testing.T) {
	reg := start(t, registry.Options{Limits: store.Limits{MaxUploadBytes: 1 << 10, MaxUploads: 2}})
	base := "http://" + reg.PlainHost()
	resp, _ := do(t, "POST", base+"/v2/anon/lim/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	resp, _ = do(t, "PATCH", loc, nil, make([]byte, 1000))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH within the limit: %d", resp.StatusCode)
	}
	resp, body := do(t, "PATCH", loc, nil, make([]byte, 100))
	if code, _ := errCode(body); resp.StatusCode != http.StatusRequestEntityTooLarge || code != "DENIED" {
		t.Errorf("PATCH past the limit: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", loc, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the oversized session still answers: %d", resp.StatusCode)
	}
	for i := 0; i < 2; i++ {
		if resp, _ := do(t, "POST", base+"/v2/anon/lim/blobs/uploads/", nil, nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("session %d: %d", i, resp.StatusCode)
		}
	}
	resp, body = do(t, "POST", base+"/v2/anon/lim/blobs/uploads/", nil, nil)
	if code, _ := errCode(body); resp.StatusCode != http.StatusTooManyRequests || code != "TOOMANYREQUESTS" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third session: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}
