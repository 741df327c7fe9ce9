package harness

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/criimage/criimage/registry/auth"
)

// Fixture credentials (registry/auth is their source). They are documented fixture values, not
// anyone's secret, but a target must treat them as secrets: none may appear in an error message.
const (
	FixtureUser     = auth.FixtureUser
	FixturePassword = auth.FixturePassword
	// The second fixture user, whose password contains ':' (AUTH-022).
	FixtureColonUser     = auth.FixtureColonUser
	FixtureColonPassword = auth.FixtureColonPassword
)

// FixtureAuth is base64("criimage:criimage-password"), the AuthConfig.auth form.
func FixtureAuth() string {
	return base64.StdEncoding.EncodeToString([]byte(FixtureUser + ":" + FixturePassword))
}

// SecretScanner sees every error message the target returns and records each one that contains
// a known secret (the fixture password, its base64 forms, and every token a spec registers).
// Leaks are attributed to the spec running when they happened (specs in one process run one at a
// time) and fail it in the suite's AfterEach.
type SecretScanner struct {
	mu      sync.Mutex
	secrets map[string]string // secret → label
	leaks   []string
}

// FixtureSecrets returns the fixture credentials in every form a target could echo, by label:
// the passwords and their base64 AuthConfig.auth forms. A SecretScanner starts with them, and no
// report may contain one (suite/report's browser check). Tokens are not here: the registry issues
// them per run.
func FixtureSecrets() map[string]string {
	return map[string]string{
		"fixture password":                          FixturePassword,
		"fixture auth (base64 user:password)":       FixtureAuth(),
		"base64 password":                           base64.StdEncoding.EncodeToString([]byte(FixturePassword)),
		"colon user's password":                     FixtureColonPassword,
		"colon user's auth (base64 user:pass:word)": base64.StdEncoding.EncodeToString([]byte(FixtureColonUser + ":" + FixtureColonPassword)),
	}
}

// NewSecretScanner knows the fixture secrets (FixtureSecrets) from the start.
func NewSecretScanner() *SecretScanner {
	s := &SecretScanner{secrets: map[string]string{}}
	for label, secret := range FixtureSecrets() {
		s.Add(label, secret)
	}
	return s
}

// Add registers a secret (tokens issued during a spec). Short strings are ignored.
func (s *SecretScanner) Add(label, secret string) {
	if len(secret) < 8 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[secret] = label
}

// Check records a leak if msg contains a secret; it returns the labels found.
func (s *SecretScanner) Check(where, msg string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []string
	for sec, label := range s.secrets {
		if strings.Contains(msg, sec) {
			found = append(found, label)
			s.leaks = append(s.leaks, fmt.Sprintf("%s: error contains the %s", where, label))
		}
	}
	return found
}

// TakeLeaks returns and clears the recorded leaks.
func (s *SecretScanner) TakeLeaks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leaks
	s.leaks = nil
	return l
}

func (s *SecretScanner) checkErr(method string, err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
		for _, d := range st.Details() {
			msg += fmt.Sprint(d)
		}
	}
	s.Check(method, msg)
}

func (s *SecretScanner) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	s.checkErr(method, err)
	return err
}

func (s *SecretScanner) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	s.checkErr(method, err)
	if err != nil {
		return nil, err
	}
	return &scannedStream{ClientStream: cs, s: s, method: method}, nil
}

type scannedStream struct {
	grpc.ClientStream
	s      *SecretScanner
	method string
}

func (c *scannedStream) RecvMsg(m any) error {
	err := c.ClientStream.RecvMsg(m)
	if err != nil && err.Error() != "EOF" {
		c.s.checkErr(c.method, err)
	}
	return err
}
