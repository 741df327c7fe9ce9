package auth

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/grpcerr"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseAuth(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *runtime.AuthConfig
		want Credentials
		code codes.Code // OK = no error
	}{
		{name: "nil", in: nil},
		{name: "empty", in: &runtime.AuthConfig{}},
		{name: "username+password", in: &runtime.AuthConfig{Username: "u", Password: "p"}, want: Credentials{Username: "u", Secret: "p"}},
		{name: "username beats everything", in: &runtime.AuthConfig{Username: "u", Password: "p", IdentityToken: "id", Auth: b64("x:y"), RegistryToken: "rt"}, want: Credentials{Username: "u", Secret: "p"}},
		{name: "username with empty password kept", in: &runtime.AuthConfig{Username: "u", IdentityToken: "id"}, want: Credentials{Username: "u"}},
		{name: "identity token", in: &runtime.AuthConfig{IdentityToken: "id"}, want: Credentials{Secret: "id"}},
		{name: "identity token beats auth and registry token", in: &runtime.AuthConfig{IdentityToken: "id", Auth: b64("x:y"), RegistryToken: "rt"}, want: Credentials{Secret: "id"}},
		{name: "auth", in: &runtime.AuthConfig{Auth: b64("user:pass")}, want: Credentials{Username: "user", Secret: "pass"}},
		{name: "auth beats registry token", in: &runtime.AuthConfig{Auth: b64("user:pass"), RegistryToken: "rt"}, want: Credentials{Username: "user", Secret: "pass"}},
		{name: "auth split at first colon", in: &runtime.AuthConfig{Auth: b64("user:pa:ss")}, want: Credentials{Username: "user", Secret: "pa:ss"}},
		{name: "auth trailing NULs trimmed", in: &runtime.AuthConfig{Auth: b64("user:pass\x00\x00")}, want: Credentials{Username: "user", Secret: "pass"}},
		{name: "auth unpadded accepted", in: &runtime.AuthConfig{Auth: strings.TrimRight(b64("user:passw"), "=")}, want: Credentials{Username: "user", Secret: "passw"}},
		{name: "auth empty password", in: &runtime.AuthConfig{Auth: b64("user:")}, want: Credentials{Username: "user"}},
		{name: "auth no colon", in: &runtime.AuthConfig{Auth: b64("user@secretpw\x00\x00")}, code: codes.InvalidArgument},
		{name: "auth empty username", in: &runtime.AuthConfig{Auth: b64(":secretpw")}, code: codes.InvalidArgument},
		{name: "auth not base64", in: &runtime.AuthConfig{Auth: "not base64!secret"}, code: codes.InvalidArgument},
		{name: "auth bad padding", in: &runtime.AuthConfig{Auth: "dXNlcjpwYXNz="}, code: codes.InvalidArgument},
		{name: "registry token", in: &runtime.AuthConfig{RegistryToken: "rt"}, want: Credentials{RegistryToken: "rt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAuth(tc.in)
			if tc.code != codes.OK {
				if grpcerr.Code(err) != tc.code {
					t.Fatalf("ParseAuth error = %v, want code %v", err, tc.code)
				}
				checkNoSecret(t, err.Error(), tc.in)
				return
			}
			if err != nil {
				t.Fatalf("ParseAuth: %v", err)
			}
			if got != tc.want {
				t.Fatalf("ParseAuth = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// checkNoSecret fails if msg holds a secret field of a, or the decoded auth, or a part of it.
func checkNoSecret(t *testing.T, msg string, a *runtime.AuthConfig) {
	t.Helper()
	if a == nil {
		return
	}
	secrets := []string{a.Password, a.Auth, a.IdentityToken, a.RegistryToken}
	if dec, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
		secrets = append(secrets, string(dec), strings.TrimRight(string(dec), "\x00"))
		u, p, _ := strings.Cut(string(dec), ":")
		secrets = append(secrets, u, p)
	}
	for _, s := range secrets {
		if len(s) < 4 || inConstantText(s) || strings.Contains(a.ServerAddress, s) {
			continue
		}
		if strings.Contains(msg, s) {
			t.Fatalf("error %q contains a secret", msg)
		}
	}
}

func inConstantText(s string) bool {
	for _, c := range errTexts {
		if strings.Contains(c, s) {
			return true
		}
	}
	return strings.Contains("illegal base64 data at input byte 0123456789 (value withheld: it contains '@') is not a registry address ([scheme://]host[:port][/path]) rpc error: code = InvalidArgument desc = ", s)
}

func TestScope(t *testing.T) {
	creds := func(server string) *runtime.AuthConfig {
		return &runtime.AuthConfig{Username: "u", Password: "p", ServerAddress: server}
	}
	for _, tc := range []struct {
		name     string
		auth     *runtime.AuthConfig
		registry string
		allowed  []string
		denied   []string
	}{
		{name: "empty server → pulled registry", auth: creds(""), registry: "127.0.0.1:5000",
			allowed: []string{"127.0.0.1:5000"}, denied: []string{"127.0.0.1:5001", "127.0.0.2:5000", "127.0.0.1"}},
		{name: "scheme and path", auth: creds("https://reg.example:5000/v2/"), registry: "other.example",
			allowed: []string{"reg.example:5000", "REG.example:5000"}, denied: []string{"reg.example", "other.example"}},
		{name: "schemeless matches", auth: creds("reg.example:5000"), registry: "reg.example:5000",
			allowed: []string{"reg.example:5000"}, denied: []string{"reg.example"}},
		{name: "port exact", auth: creds("reg.example"), registry: "reg.example:5000",
			allowed: []string{"reg.example"}, denied: []string{"reg.example:5000", "reg.example:443"}},
		{name: "docker hub v1 address", auth: creds("https://index.docker.io/v1/"), registry: "docker.io",
			allowed: []string{"registry-1.docker.io", "docker.io", "index.docker.io"}, denied: []string{"auth.docker.io", "quay.io"}},
		{name: "docker hub by reference", auth: creds(""), registry: "docker.io",
			allowed: []string{"registry-1.docker.io"}, denied: []string{"mirror.example"}},
		{name: "mirror gets nothing unless named", auth: creds("mirror.example:8443"), registry: "docker.io",
			allowed: []string{"mirror.example:8443"}, denied: []string{"registry-1.docker.io"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScope(tc.auth, tc.registry)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.allowed {
				if got := s.For(h); got.Username != "u" {
					t.Errorf("For(%q) = %v, want the credentials", h, got)
				}
			}
			for _, h := range tc.denied {
				if got := s.For(h); !got.Anonymous() {
					t.Errorf("For(%q) = %v, want anonymous", h, got)
				}
			}
		})
	}
}

func TestScopeBadServerAddress(t *testing.T) {
	for _, addr := range []string{"https://", "http://user:secretpw@reg.example", "%zz", "://x"} {
		_, err := NewScope(&runtime.AuthConfig{Username: "u", Password: "secretpw", ServerAddress: addr}, "reg.example")
		if grpcerr.Code(err) != codes.InvalidArgument {
			t.Fatalf("NewScope(%q) = %v, want InvalidArgument", addr, err)
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Fatalf("error leaks the password: %v", err)
		}
		if !strings.Contains(err.Error(), "server_address") {
			t.Fatalf("error does not name server_address: %v", err)
		}
	}
}

func TestRealmAllowed(t *testing.T) {
	s, err := NewScope(&runtime.AuthConfig{Username: "u", Password: "p"}, "reg.example:5000")
	if err != nil {
		t.Fatal(err)
	}
	hub, err := NewScope(&runtime.AuthConfig{Username: "u", Password: "p"}, "docker.io")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s            *Scope
		host, scheme string
		realm        string
		want         bool
	}{
		{s, "reg.example:5000", "https", "https://reg.example:5000/token", true},
		{s, "reg.example:5000", "http", "http://reg.example:5000/token", true},
		{s, "reg.example:5000", "https", "http://reg.example:5000/token", false},  // downgrade
		{s, "reg.example:5000", "https", "https://auth.example/token", false},     // other host
		{s, "reg.example:5000", "https", "https://reg.example:5001/token", false}, // other port
		{s, "other.example", "https", "https://other.example/token", false},       // host not allowed
		{hub, "registry-1.docker.io", "https", "https://auth.docker.io/token", true},
		{hub, "registry-1.docker.io", "https", "http://auth.docker.io/token", false},
	} {
		u, _ := url.Parse(tc.realm)
		if got := tc.s.RealmAllowed(tc.host, tc.scheme, u); got != tc.want {
			t.Errorf("RealmAllowed(%s, %s, %s) = %v, want %v", tc.host, tc.scheme, tc.realm, got, tc.want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	key := []byte("k")
	mk := func(a *runtime.AuthConfig, reg string) string {
		s, err := NewScope(a, reg)
		if err != nil {
			t.Fatal(err)
		}
		return s.Fingerprint(key)
	}
	a := mk(&runtime.AuthConfig{Username: "u", Password: "p"}, "r")
	if a != mk(&runtime.AuthConfig{Auth: b64("u:p")}, "r") {
		t.Error("equal credentials in different fields must share a fingerprint")
	}
	for _, other := range []string{
		mk(&runtime.AuthConfig{Username: "u", Password: "q"}, "r"),
		mk(&runtime.AuthConfig{Username: "u", Password: "p"}, "s"),
		mk(nil, "r"),
		mk(&runtime.AuthConfig{Username: "u:", Password: ""}, "r"),
	} {
		if other == a {
			t.Error("different credentials or scope must not share a fingerprint")
		}
	}
	if strings.Contains(a, "p") && len(a) != 64 {
		t.Error("fingerprint is not a hex digest")
	}
}

func FuzzParseAuth(f *testing.F) {
	f.Add("", "", b64("user:pass"), "", "", "")
	f.Add("u", "p", "", "", "", "https://reg.example/v1/")
	f.Add("", "", b64("user@secretpw\x00\x00"), "", "", "")
	f.Add("", "", "dXNlcjpwYXNz", "id", "rt", "reg.example:5000")
	f.Add("", "", "!!!", "", "", "http://user:pw@x")
	f.Fuzz(func(t *testing.T, user, pass, authField, identity, regToken, server string) {
		a := &runtime.AuthConfig{Username: user, Password: pass, Auth: authField, IdentityToken: identity, RegistryToken: regToken, ServerAddress: server}
		creds, err := ParseAuth(a)
		if err != nil {
			if grpcerr.Code(err) != codes.InvalidArgument {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
			checkNoSecret(t, err.Error(), a)
		} else if s := creds.String(); pass != "" && len(pass) >= 4 && !inConstantText(pass) && !strings.Contains(user, pass) && strings.Contains(s, pass) {
			t.Fatalf("Credentials.String leaks the password: %q", s)
		}
		s, err := NewScope(a, "reg.example")
		if err != nil {
			if grpcerr.Code(err) != codes.InvalidArgument {
				t.Fatalf("NewScope error %v is not InvalidArgument", err)
			}
			checkNoSecret(t, err.Error(), a)
			return
		}
		d := s.Describe()
		checkNoSecret(t, strings.ReplaceAll(d, user, ""), &runtime.AuthConfig{Password: pass, IdentityToken: identity, RegistryToken: regToken, ServerAddress: server + user})
	})
}

func TestScopeServedBy(t *testing.T) {
	hub, err := NewScope(&runtime.AuthConfig{Username: "u", Password: "p", ServerAddress: "https://index.docker.io/v1/"}, "docker.io")
	if err != nil {
		t.Fatal(err)
	}
	mirror := "mirror.example:5000"
	if hub.Allowed(mirror) {
		t.Fatal("a Scope alone never allows a mirror")
	}
	if s := hub.ServedBy("docker.io", mirror); !s.Allowed(mirror) || s.For(mirror).Secret != "p" || hub.Allowed(mirror) {
		t.Error("a host serving docker.io gets docker.io credentials (and the original scope is unchanged)")
	}
	if s := hub.ServedBy("quay.io", mirror); s.Allowed(mirror) {
		t.Error("a host serving quay.io got docker.io credentials")
	}
	quay, err := NewScope(&runtime.AuthConfig{Username: "u", Password: "p"}, "quay.io")
	if err != nil {
		t.Fatal(err)
	}
	if s := quay.ServedBy("docker.io", mirror); s.Allowed(mirror) {
		t.Error("a docker.io mirror got credentials for quay.io")
	}
	if s := quay.ServedBy("quay.io", mirror); !s.Allowed(mirror) || s.Allowed("docker.io") {
		t.Error("a quay.io mirror: allowed, and nothing else")
	}
}
