package auth

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/criimage/criimage/registry/errcode"
)

// serveToken is the token service: GET (distribution token.md) and POST (oauth.md) on /token;
// /token/get-only answers GET only (POST 404), and so does any POST naming a token-get/… scope.
func (s *Service) serveToken(w http.ResponseWriter, r *http.Request) {
	tr := TokenRequest{Time: s.now(), Method: r.Method, Path: r.URL.Path, Credential: "none"}
	status := s.token(w, r, &tr)
	tr.Status = status
	s.record(tr)
}

// token answers one token request and returns the status written.
func (s *Service) token(w http.ResponseWriter, r *http.Request, tr *TokenRequest) int {
	if r.URL.Path != "/token" && r.URL.Path != GetOnlyPath {
		return fail(w, r, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no token service at %q", r.URL.Path))
	}
	var (
		rawScopes []string
		user      bool
		refresh   string // refresh token to return
		offline   bool
	)
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		tr.Service, tr.ClientID = q.Get("service"), q.Get("client_id")
		rawScopes = q["scope"]
		tr.Scopes = rawScopes
		offline = q.Get("offline_token") == "true"
		if u, p, ok := r.BasicAuth(); ok {
			switch {
			case s.validUser(u, p):
				user, tr.Credential = true, "basic-password"
			case s.validRefresh(p): // containerd's GET fallback for identity tokens: Basic ":"+token
				user, tr.Credential = true, "basic-refresh-token"
			default:
				tr.Credential = "invalid"
				return fail(w, r, http.StatusUnauthorized, errcode.Unauthorized,
					fmt.Sprintf("token request for scope %q: invalid username or password", strings.Join(rawScopes, " ")))
			}
		} else if r.Header.Get("Authorization") != "" {
			tr.Credential = "invalid"
			return fail(w, r, http.StatusUnauthorized, errcode.Unauthorized, "token request: only Basic credentials are accepted by GET")
		}
		if offline && user {
			refresh = s.newRefreshToken()
		}

	case http.MethodPost:
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
			return fail(w, r, http.StatusBadRequest, errcode.Unsupported, fmt.Sprintf("token POST: Content-Type %q, want application/x-www-form-urlencoded", ct))
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return fail(w, r, http.StatusBadRequest, errcode.Unsupported, fmt.Sprintf("token POST: reading form: %v", err))
		}
		f := r.PostForm
		tr.Service, tr.ClientID, tr.GrantType = f.Get("service"), f.Get("client_id"), f.Get("grant_type")
		rawScopes = f["scope"]
		tr.Scopes = rawScopes
		offline = f.Get("access_type") == "offline"
		switch tr.GrantType { // what was sent; "invalid" below when it does not check out
		case "password":
			tr.Credential = "password"
		case "refresh_token":
			tr.Credential = "refresh-token"
		}
		if r.URL.Path == GetOnlyPath || namesNamespace(rawScopes, NSTokenGet) {
			return fail(w, r, http.StatusNotFound, errcode.Unsupported, "this token server does not implement OAuth2 POST; use GET")
		}
		if tr.ClientID == "" {
			return fail(w, r, http.StatusBadRequest, errcode.Unsupported, "token POST: client_id is required")
		}
		switch tr.GrantType {
		case "password":
			if !s.validUser(f.Get("username"), f.Get("password")) {
				tr.Credential = "invalid"
				return fail(w, r, http.StatusUnauthorized, errcode.Unauthorized,
					fmt.Sprintf("token POST for scope %q: invalid username or password", strings.Join(rawScopes, " ")))
			}
			user, tr.Credential = true, "password"
			if offline {
				refresh = s.newRefreshToken()
			}
		case "refresh_token":
			rt := f.Get("refresh_token")
			if !s.validRefresh(rt) {
				tr.Credential = "invalid"
				return fail(w, r, http.StatusUnauthorized, errcode.Unauthorized,
					fmt.Sprintf("token POST for scope %q: unknown refresh token", strings.Join(rawScopes, " ")))
			}
			user, tr.Credential, refresh = true, "refresh-token", rt
		default:
			return fail(w, r, http.StatusBadRequest, errcode.Unsupported, fmt.Sprintf("token POST: unsupported grant_type %q", tr.GrantType))
		}

	default:
		w.Header().Set("Allow", "GET, POST")
		return fail(w, r, http.StatusMethodNotAllowed, errcode.Unsupported, fmt.Sprintf("token service: method %s not allowed", r.Method))
	}
	tr.Offline = offline

	if tr.Service != "" && tr.Service != s.service {
		return fail(w, r, http.StatusBadRequest, errcode.Unsupported, fmt.Sprintf("token request: unknown service %q, want %q", tr.Service, s.service))
	}
	scopes, err := ParseScopes(strings.Join(rawScopes, " "))
	if err != nil {
		return fail(w, r, http.StatusBadRequest, errcode.Unsupported, "token request: "+err.Error())
	}
	tok, g, lifetime, issued := s.issue(user, scopes)
	tr.Granted = g.scopes()
	// A map, not containerd's auth.FetchTokenResponse/OAuthTokenResponse (client-side types
	// without omitempty): optional fields must be absent, not empty.
	resp := map[string]any{
		"access_token": tok,
		"expires_in":   max(1, int(math.Ceil(lifetime.Seconds()))),
		"issued_at":    issued.UTC().Format(time.RFC3339),
	}
	q := s.currentQuirks()
	if q.OmitExpiresIn {
		delete(resp, "expires_in")
	}
	if q.OmitIssuedAt {
		delete(resp, "issued_at")
	}
	if r.Method == http.MethodGet {
		if !q.AccessTokenOnly {
			resp["token"] = tok
		}
	} else {
		resp["scope"] = tr.Granted
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	b, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return http.StatusOK
}

func fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) int {
	errcode.Write(w, r, status, code, msg, nil)
	return status
}

// namesNamespace reports whether any scope's repository is in namespace ns.
func namesNamespace(rawScopes []string, ns string) bool {
	scopes, _ := ParseScopes(strings.Join(rawScopes, " "))
	for _, sc := range scopes {
		if sc.Type == "repository" && namespace(sc.Name) == ns {
			return true
		}
	}
	return false
}
