package auth_test

import (
	"net/url"
	"testing"

	"github.com/criimage/criimage/registry/auth"
)

// TestColonUser: the second fixture user's password contains ':'; Basic splits at the first colon
// (RFC 7617); the token service's POST takes only that split.
func TestColonUser(t *testing.T) {
	e := newEnv(t)
	e.push(t, "basic/x", 1)
	u, p := auth.FixtureColonUser, auth.FixtureColonPassword
	if w := get(t, e.srv.URL+"/v2/basic/x/manifests/v1", "Authorization", basicAuth(u, p)); w.status != 200 {
		t.Errorf("basic/x as the colon user: %d", w.status)
	}
	scope := url.QueryEscape("repository:token/x:pull")
	if w := get(t, e.srv.URL+"/token?service=criimage-registry&scope="+scope, "Authorization", basicAuth(u, p)); w.status != 200 {
		t.Errorf("token GET as the colon user: %d", w.status)
	}
	form := url.Values{"grant_type": {"password"}, "client_id": {"t"}, "username": {u}, "password": {p}, "scope": {"repository:token/x:pull"}, "service": {"criimage-registry"}}
	if w := post(t, e.srv.URL+"/token", form); w.status != 200 {
		t.Errorf("token POST as the colon user: %d", w.status)
	}
	// Split at the last colon (only a POST carries user and password apart; a Basic header of
	// either split is the same bytes): user "criimage-colon:criimage:colon", password "password".
	form.Set("username", u+":criimage:colon")
	form.Set("password", "password")
	if w := post(t, e.srv.URL+"/token", form); w.status != 401 {
		t.Errorf("token POST with the colon user split at the last colon: %d, want 401", w.status)
	}
}
