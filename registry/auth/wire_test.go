package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	ctrdauth "github.com/containerd/containerd/v2/core/remotes/docker/auth"

	"github.com/criimage/criimage/registry/auth"
)

type wireResp struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func do(t *testing.T, req *http.Request) wireResp {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	w := wireResp{status: res.StatusCode, header: res.Header, body: b}
	_ = json.Unmarshal(b, &w.json)
	return w
}

func get(t *testing.T, u string, hdr ...string) wireResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func post(t *testing.T, u string, form url.Values) wireResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	return do(t, req)
}

func basicAuth(u, p string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
}

// challengeOf parses WWW-Authenticate with containerd's parser.
func challengeOf(t *testing.T, h http.Header) ctrdauth.Challenge {
	t.Helper()
	cs := ctrdauth.ParseAuthHeader(h)
	if len(cs) != 1 {
		t.Fatalf("want one challenge, got %q", h.Values("WWW-Authenticate"))
	}
	return cs[0]
}

func wantUnauthorizedJSON(t *testing.T, w wireResp) {
	t.Helper()
	if w.status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401; body %s", w.status, w.body)
	}
	if ct := w.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(w.body, &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != "UNAUTHORIZED" || body.Errors[0].Message == "" {
		t.Errorf("body %s, want one UNAUTHORIZED error with a message", w.body)
	}
}

func TestTokenGET(t *testing.T) {
	e := newEnv(t)
	base := e.srv.URL + "/token?service=criimage-registry"

	t.Run("anonymous", func(t *testing.T) {
		w := get(t, base+"&scope=repository:anon/x:pull,push&scope=repository:token/x:pull")
		if w.status != 200 {
			t.Fatalf("status %d: %s", w.status, w.body)
		}
		if w.json["token"] == "" || w.json["token"] != w.json["access_token"] {
			t.Errorf("token %v access_token %v: want equal, non-empty", w.json["token"], w.json["access_token"])
		}
		if _, ok := w.json["refresh_token"]; ok {
			t.Error("refresh_token without offline_token")
		}
		if _, err := time.Parse(time.RFC3339, w.json["issued_at"].(string)); err != nil {
			t.Errorf("issued_at: %v", err)
		}
		if w.json["expires_in"].(float64) != 300 {
			t.Errorf("expires_in %v, want 300", w.json["expires_in"])
		}
		last := e.svc.TokenRequests()[len(e.svc.TokenRequests())-1]
		if last.Granted != "repository:anon/x:pull,push" {
			t.Errorf("granted %q: anonymous must get anon/x only", last.Granted)
		}
	})
	t.Run("basic offline client_id host port scope", func(t *testing.T) {
		w := get(t, base+"&offline_token=true&client_id=test&scope=repository:localhost:5000/token/x:pull&scope=repository:token/y:pull,delete,bogus",
			"Authorization", basicAuth(user, pass))
		if w.status != 200 || w.json["refresh_token"] == nil || w.json["refresh_token"] == "" {
			t.Fatalf("status %d body %s: want a refresh_token", w.status, w.body)
		}
		last := e.svc.TokenRequests()[len(e.svc.TokenRequests())-1]
		if last.ClientID != "test" || !last.Offline || last.Granted != "repository:localhost:5000/token/x:pull repository:token/y:pull,delete" {
			// localhost:5000/token/x is in namespace "localhost:5000" (no policy): granted as asked.
			t.Errorf("recorded %+v", last)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		w := get(t, base+"&scope=repository:token/x:pull", "Authorization", basicAuth(user, "wrong-secret"))
		wantUnauthorizedJSON(t, w)
		if strings.Contains(string(w.body), "wrong-secret") {
			t.Error("error body echoes the password")
		}
	})
	t.Run("bad scope", func(t *testing.T) {
		w := get(t, base+"&scope=repository:nope")
		if w.status != 400 || !strings.Contains(string(w.body), `repository:nope`) {
			t.Errorf("status %d body %s: want 400 naming the scope", w.status, w.body)
		}
	})
	t.Run("wrong service", func(t *testing.T) {
		w := get(t, e.srv.URL+"/token?service=elsewhere&scope=repository:anon/x:pull")
		if w.status != 400 || !strings.Contains(string(w.body), "elsewhere") {
			t.Errorf("status %d body %s: want 400 naming the service", w.status, w.body)
		}
	})
}

func TestTokenPOST(t *testing.T) {
	e := newEnv(t)
	form := func(kv ...string) url.Values {
		v := url.Values{"service": {"criimage-registry"}, "client_id": {"test-client"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	var refresh string
	t.Run("password offline", func(t *testing.T) {
		w := post(t, e.srv.URL+"/token", form("grant_type", "password", "username", user, "password", pass, "access_type", "offline",
			"scope", "repository:scoped/allowed/x:pull,push,delete repository:scoped/other:pull"))
		if w.status != 200 {
			t.Fatalf("status %d: %s", w.status, w.body)
		}
		if w.json["access_token"] == "" || w.json["expires_in"] == nil || w.json["scope"] != "repository:scoped/allowed/x:pull,push" {
			t.Errorf("body %s: want access_token, expires_in and the intersected scope", w.body)
		}
		refresh, _ = w.json["refresh_token"].(string)
		if refresh == "" {
			t.Fatal("no refresh_token with access_type=offline")
		}
	})
	t.Run("refresh token returns the same refresh token", func(t *testing.T) {
		w := post(t, e.srv.URL+"/token", form("grant_type", "refresh_token", "refresh_token", refresh, "scope", "repository:token/x:pull"))
		if w.status != 200 || w.json["refresh_token"] != refresh || w.json["scope"] != "repository:token/x:pull" {
			t.Errorf("status %d body: %s", w.status, w.body)
		}
	})
	t.Run("issued refresh token", func(t *testing.T) {
		w := post(t, e.srv.URL+"/token", form("grant_type", "refresh_token", "refresh_token", e.svc.IssueRefreshToken(), "scope", "repository:token/x:pull"))
		if w.status != 200 {
			t.Errorf("status %d body: %s", w.status, w.body)
		}
	})
	for _, c := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"wrong password", "/token", form("grant_type", "password", "username", user, "password", "wrong-secret", "scope", "repository:token/x:pull"), 401, "invalid username or password"},
		{"unknown refresh token", "/token", form("grant_type", "refresh_token", "refresh_token", "wrong-secret"), 401, "unknown refresh token"},
		{"no client_id", "/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}}, 400, "client_id"},
		{"bad grant", "/token", form("grant_type", "authorization_code"), 400, "authorization_code"},
		{"token-get scope", "/token", form("grant_type", "password", "username", user, "password", pass, "scope", "repository:token-get/x:pull"), 404, "use GET"},
		{"get-only realm", "/token/get-only", form("grant_type", "password", "username", user, "password", pass), 404, "use GET"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := post(t, e.srv.URL+c.path, c.form)
			if w.status != c.status || !strings.Contains(string(w.body), c.says) || w.header.Get("Content-Type") != "application/json" {
				t.Errorf("status %d body %s: want %d JSON saying %q", w.status, w.body, c.status, c.says)
			}
			if strings.Contains(string(w.body), "wrong-secret") {
				t.Error("error body echoes a secret")
			}
		})
	}
	t.Run("get-only GET works", func(t *testing.T) {
		w := get(t, e.srv.URL+"/token/get-only?service=criimage-registry&scope=repository:token-get/x:pull", "Authorization", basicAuth(user, pass))
		if w.status != 200 {
			t.Errorf("status %d body %s", w.status, w.body)
		}
	})
}

func TestChallenges(t *testing.T) {
	e := newEnv(t)
	e.push(t, "token/x", 1)
	e.push(t, "basic/x", 2)
	e.push(t, "token-short/x", 3)
	realm := e.srv.URL + "/token"
	tokenFor := func(scope string) string {
		w := get(t, e.srv.URL+"/token?service=criimage-registry&scope="+url.QueryEscape(scope), "Authorization", basicAuth(user, pass))
		return w.json["token"].(string)
	}

	t.Run("ping", func(t *testing.T) {
		w := get(t, e.srv.URL+"/v2/")
		wantUnauthorizedJSON(t, w)
		c := challengeOf(t, w.header)
		want := map[string]string{"realm": realm, "service": "criimage-registry"}
		if c.Scheme != ctrdauth.BearerAuth || !reflect.DeepEqual(c.Parameters, want) {
			t.Errorf("challenge %+v, want Bearer %v", c, want)
		}
		if w := get(t, e.srv.URL+"/v2/", "Authorization", "Bearer "+tokenFor("repository:token/x:pull")); w.status != 200 {
			t.Errorf("ping with a token: %d", w.status)
		}
		if w := get(t, e.srv.URL+"/v2/", "Authorization", basicAuth(user, pass)); w.status != 200 {
			t.Errorf("ping with Basic: %d", w.status)
		}
	})
	t.Run("bearer no token", func(t *testing.T) {
		w := get(t, e.srv.URL+"/v2/token/x/manifests/v1")
		wantUnauthorizedJSON(t, w)
		c := challengeOf(t, w.header)
		want := map[string]string{"realm": realm, "service": "criimage-registry", "scope": "repository:token/x:pull"}
		if !reflect.DeepEqual(c.Parameters, want) {
			t.Errorf("challenge %v, want %v", c.Parameters, want)
		}
		if !strings.Contains(string(w.body), `"Name":"token/x"`) {
			t.Errorf("body %s: want a detail naming the repository", w.body)
		}
	})
	t.Run("push needs pull,push", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v2/token/x/blobs/uploads/", nil)
		w := do(t, req)
		if got := challengeOf(t, w.header).Parameters["scope"]; got != "repository:token/x:pull,push" {
			t.Errorf("scope %q", got)
		}
		tok := tokenFor("repository:token/x:pull")
		req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/v2/token/x/blobs/uploads/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w = do(t, req)
		if got := challengeOf(t, w.header).Parameters["error"]; got != "insufficient_scope" {
			t.Errorf("pull-only token pushing: error %q, want insufficient_scope", got)
		}
	})
	t.Run("token-get realm", func(t *testing.T) {
		w := get(t, e.srv.URL+"/v2/token-get/x/manifests/v1")
		if got := challengeOf(t, w.header).Parameters["realm"]; got != e.srv.URL+auth.GetOnlyPath {
			t.Errorf("realm %q", got)
		}
	})
	t.Run("basic", func(t *testing.T) {
		w := get(t, e.srv.URL+"/v2/basic/x/manifests/v1")
		wantUnauthorizedJSON(t, w)
		if c := challengeOf(t, w.header); c.Scheme != ctrdauth.BasicAuth || c.Parameters["realm"] == "" {
			t.Errorf("challenge %+v, want Basic with a realm", c)
		}
		w = get(t, e.srv.URL+"/v2/basic/x/manifests/v1", "Authorization", basicAuth(user, "wrong-secret"))
		wantUnauthorizedJSON(t, w)
		if !strings.Contains(string(w.body), "invalid username or password") || strings.Contains(string(w.body), "wrong-secret") {
			t.Errorf("body %s", w.body)
		}
		if w := get(t, e.srv.URL+"/v2/basic/x/manifests/v1", "Authorization", basicAuth(user, pass)); w.status != 200 {
			t.Errorf("Basic with the fixture password: %d", w.status)
		}
		if w := get(t, e.srv.URL+"/v2/basic/x/manifests/v1", "Authorization", "Bearer "+tokenFor("repository:basic/x:pull")); w.status != 200 {
			t.Errorf("bearer token for basic/x: %d", w.status)
		}
		if w := get(t, e.srv.URL+"/v2/basic/x/manifests/v1", "Authorization", "Bearer "+tokenFor("repository:token/x:pull")); w.status != 401 {
			t.Errorf("bearer token for another repo on basic/x: %d", w.status)
		}
	})
	t.Run("invalid_token", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			token func() string
		}{
			{"unknown", func() string { return "no-such-token" }},
			{"expired", func() string {
				e.svc.SetExpiresIn(2 * time.Second)
				tok := tokenFor("repository:token-short/x:pull")
				if w := get(t, e.srv.URL+"/v2/token-short/x/manifests/v1", "Authorization", "Bearer "+tok); w.status != 200 {
					t.Fatalf("fresh short token: %d", w.status)
				}
				e.clock.Advance(2 * time.Second)
				return tok
			}},
			{"revoked", func() string {
				tok := tokenFor("repository:token/x:pull")
				e.svc.RevokeAll()
				return tok
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				path := "/v2/token/x/manifests/v1"
				if c.name == "expired" {
					path = "/v2/token-short/x/manifests/v1"
				}
				w := get(t, e.srv.URL+path, "Authorization", "Bearer "+c.token())
				wantUnauthorizedJSON(t, w)
				if got := challengeOf(t, w.header).Parameters["error"]; got != "invalid_token" {
					t.Errorf("error=%q, want invalid_token", got)
				}
			})
		}
	})
	t.Run("short expires_in", func(t *testing.T) {
		e.svc.SetExpiresIn(7 * time.Second)
		w := get(t, e.srv.URL+"/token?service=criimage-registry&scope=repository:token-short/x:pull", "Authorization", basicAuth(user, pass))
		if w.json["expires_in"] != float64(7) {
			t.Errorf("expires_in %v, want 7", w.json["expires_in"])
		}
	})
	t.Run("anonymous namespaces untouched", func(t *testing.T) {
		e.push(t, "anon/x", 4)
		if w := get(t, e.srv.URL+"/v2/anon/x/manifests/v1"); w.status != 200 {
			t.Errorf("anon: %d", w.status)
		}
		if w := get(t, e.srv.URL+"/v2/anon/x/manifests/v1", "Authorization", "Bearer garbage"); w.status != 200 {
			t.Errorf("anon with a bad token: %d", w.status)
		}
	})
}

func TestParseScopes(t *testing.T) {
	got, err := auth.ParseScopes("repository:localhost:5000/a/b:pull,push  repository(plugin):x:pull registry:catalog:*")
	if err != nil {
		t.Fatal(err)
	}
	want := []auth.Scope{
		{Type: "repository", Name: "localhost:5000/a/b", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "x", Actions: []string{"pull"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"repository", "repository:x", ":x:pull", "repository::pull", "repository:x:PULL"} {
		if _, err := auth.ParseScopes(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error %v, want one naming the input", bad, err)
		}
	}
}

func TestRealmFollowsTLSAndHost(t *testing.T) {
	svc := auth.New(auth.Options{})
	srv := httptest.NewTLSServer(svc.Middleware(http.NotFoundHandler()))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/token/x/manifests/v1", nil)
	req.Host = "registry.criimage.test:5443" // the name a client put in its image reference
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := challengeOf(t, res.Header).Parameters["realm"]; got != "https://registry.criimage.test:5443/token" {
		t.Errorf("realm %q", got)
	}
}

func TestRefusedPushChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.push(t, "token/x", 1)
	manifest := get(t, e.admin.URL+"/v2/token/x/manifests/v1")
	for _, hdr := range [][]string{nil, {"Authorization", basicAuth(user, "wrong-secret")}, {"Authorization", "Bearer nope"}} {
		req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/v2/token/x/manifests/hijacked", strings.NewReader(string(manifest.body)))
		req.Header.Set("Content-Type", manifest.header.Get("Content-Type"))
		if hdr != nil {
			req.Header.Set(hdr[0], hdr[1])
		}
		if w := do(t, req); w.status != http.StatusUnauthorized {
			t.Errorf("PUT with %v: %d", hdr, w.status)
		}
	}
	if w := get(t, e.admin.URL+"/v2/token/x/manifests/hijacked"); w.status != http.StatusNotFound {
		t.Errorf("refused PUT created the tag: %d", w.status)
	}
}
