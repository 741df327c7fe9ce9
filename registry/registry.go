// Package registry runs the hermetic fixture registry: one in-memory store served on three
// loopback listeners — plain HTTP, TLS (certificate from a CA generated at start) and a foreign
// host on another loopback IP (a CDN / blob store that redirects point at) — each wrapped, from the
// outside in, by the journal, gates, faults and auth before the distribution API.
//
// Content is seeded from Go (PutBlob, PutManifest, Tag, …) without going through auth, or pushed
// over HTTP like to any registry.
package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/api"
	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/gates"
	"github.com/criimage/criimage/registry/journal"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/registry/store"
	"github.com/criimage/criimage/registry/tlsca"
)

// DefaultTLSHostName is the DNS name in the TLS listener's certificate.
const DefaultTLSHostName = "registry.criimage.test"

// Options configure a Registry.
type Options struct {
	// Listen addresses; "" means 127.0.0.1:0 (plain, TLS), 127.0.0.2:0 (foreign) and the plain
	// listener's IP, port 0 (other-port). Only loopback addresses (127.0.0.0/8, ::1, localhost)
	// are accepted.
	PlainAddr, TLSAddr, ForeignAddr, OtherPortAddr string
	// TLSHostName is the DNS SAN of the TLS listener's certificate (plus 127.0.0.1, ::1, localhost).
	TLSHostName string       // default "registry.criimage.test"
	Logger      *slog.Logger // nil = discard
	// Limits bound upload sessions (zero fields: store.DefaultLimits).
	Limits store.Limits
	// MaxJournalEntries makes the journal a ring of that many newest entries (0: keep all, fine
	// for a suite run; a long-running standalone registry sets a bound).
	MaxJournalEntries int
}

// Registry is a running fixture registry. Close it when done.
type Registry struct {
	log     *slog.Logger
	store   *store.Store
	journal *journal.Journal
	faults  *faults.Set
	gates   *gates.Set
	auth    *auth.Service
	ca      *tlsca.CA
	dir     string // temp dir owned by r (CA file)
	tlsName string

	plain, tls, foreign, otherPort *server
}

type server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// CheckLoopback returns an error unless addr ("host:port") is on a loopback address.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not loopback: the fixture registry only listens on 127.0.0.0/8 or [::1]", addr)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Start listens on the three addresses and serves until Close. ctx bounds only the start-up.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	plainAddr := orDefault(opts.PlainAddr, "127.0.0.1:0")
	tlsAddr := orDefault(opts.TLSAddr, "127.0.0.1:0")
	foreignAddr := orDefault(opts.ForeignAddr, "127.0.0.2:0")
	for _, a := range []string{plainAddr, tlsAddr, foreignAddr, orDefault(opts.OtherPortAddr, "127.0.0.1:0")} {
		if err := CheckLoopback(a); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	tlsName := orDefault(opts.TLSHostName, DefaultTLSHostName)
	if strings.ContainsAny(tlsName, ":/ ") {
		return nil, fmt.Errorf("registry: TLS host name %q is not a host name", tlsName)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	j, err := journal.New()
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	j.SetMaxEntries(opts.MaxJournalEntries)
	r := &Registry{log: logger, store: store.NewWithLimits(opts.Limits), journal: j, gates: gates.New(), auth: auth.New(auth.Options{}), tlsName: tlsName}
	ok := false
	defer func() {
		if !ok {
			_ = r.Close()
		}
	}()

	r.ca, err = tlsca.New("criimage fixture registry CA", 7*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	cert, err := r.ca.Issue([]string{tlsName, "127.0.0.1", "::1", "localhost"}, 7*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if r.dir, err = os.MkdirTemp("", "criimage-registry-"); err != nil {
		return nil, fmt.Errorf("registry: temp dir: %w", err)
	}
	if err := os.WriteFile(r.CAFile(), r.ca.CertPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("registry: writing CA file: %w", err)
	}

	var lc net.ListenConfig
	listen := func(name route.Listener, addr string) (net.Listener, error) {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("registry: %s listener on %s: %w", name, addr, err)
		}
		return ln, nil
	}
	plainLn, err := listen(route.ListenerPlain, plainAddr)
	if err != nil {
		return nil, err
	}
	tlsLn, err := listen(route.ListenerTLS, tlsAddr)
	if err != nil {
		_ = plainLn.Close()
		return nil, err
	}
	foreignLn, err := listen(route.ListenerForeign, foreignAddr)
	if err != nil {
		_ = plainLn.Close()
		_ = tlsLn.Close()
		return nil, err
	}
	plainIP, _, _ := net.SplitHostPort(plainLn.Addr().String())
	otherLn, err := listen(route.ListenerOtherPort, orDefault(opts.OtherPortAddr, net.JoinHostPort(plainIP, "0")))
	if err != nil {
		_ = plainLn.Close()
		_ = tlsLn.Close()
		_ = foreignLn.Close()
		return nil, err
	}
	foreignURL := "http://" + foreignLn.Addr().String()

	r.faults = faults.New(faults.Options{ForeignURL: func() string { return foreignURL }})
	apiHandler := api.New(api.Options{Store: r.store, ForeignURL: func() string { return foreignURL }, Logger: logger})
	foreignHandler := newForeignHandler(r.store)

	authed := r.auth.Middleware(apiHandler)
	r.plain = r.serve(route.ListenerPlain, plainLn, r.compose(route.ListenerPlain, authed), nil)
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	r.tls = r.serve(route.ListenerTLS, tls.NewListener(tlsLn, tlsConf), r.compose(route.ListenerTLS, authed), tlsConf)
	// The foreign host has no auth: it is somebody else's server.
	r.foreign = r.serve(route.ListenerForeign, foreignLn, r.compose(route.ListenerForeign, foreignHandler), nil)
	r.otherPort = r.serve(route.ListenerOtherPort, otherLn, r.compose(route.ListenerOtherPort, foreignHandler), nil)
	ok = true
	logger.Info("fixture registry started", "plain", r.PlainHost(), "tls", r.TLSAddr(), "foreign", r.ForeignURL(), "other-port", r.OtherPortURL())
	return r, nil
}

// compose wraps h (the API behind auth, or the foreign host) in, outermost first,
// journal → gates → faults.
func (r *Registry) compose(listener route.Listener, h http.Handler) http.Handler {
	h = r.faults.Middleware(listener, h)
	h = r.gates.Middleware(listener, h)
	return r.journal.Middleware(listener, h)
}

func (r *Registry) serve(name route.Listener, ln net.Listener, h http.Handler, tlsConf *tls.Config) *server {
	s := &server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          log.New(slogWriter{r.log, name}, "", 0),
			TLSConfig:         tlsConf,
			// HTTP/1.1 only: faults hijack connections (reset) and the journal's aborted
			// detection relies on per-request connections.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("fixture registry listener stopped", "listener", name, "error", err)
		}
	}()
	return s
}

// slogWriter forwards net/http's server log lines to slog.
type slogWriter struct {
	log  *slog.Logger
	name route.Listener
}

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)), "listener", w.name)
	return len(p), nil
}

// Close stops the listeners (aborting responses in flight, stalls included) and removes the temp
// dir. It is safe to call more than once.
func (r *Registry) Close() error {
	if r.faults != nil {
		r.faults.Close()
	}
	r.gates.Close()
	var errs []error
	for _, s := range []*server{r.plain, r.tls, r.foreign, r.otherPort} {
		if s == nil {
			continue
		}
		if err := s.srv.Close(); err != nil {
			errs = append(errs, err)
		}
		<-s.done
	}
	if r.dir != "" {
		if err := os.RemoveAll(r.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", r.dir, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registry: close: %w", err)
	}
	return nil
}

// PlainHost is "127.0.0.1:PORT" of the plain HTTP listener.
func (r *Registry) PlainHost() string { return r.plain.ln.Addr().String() }

// TLSAddr is "127.0.0.1:PORT" of the TLS listener.
func (r *Registry) TLSAddr() string { return r.tls.ln.Addr().String() }

// TLSHost is "<TLSHostName>:PORT": the TLS listener under its certificate's DNS name (resolving it
// to the listener's IP is the caller's business: /etc/hosts, a dialer, hosts.toml).
func (r *Registry) TLSHost() string {
	_, port, _ := net.SplitHostPort(r.TLSAddr())
	return net.JoinHostPort(r.tlsName, port)
}

// TLSHostName is the DNS name in the TLS certificate.
func (r *Registry) TLSHostName() string { return r.tlsName }

// ForeignURL is "http://127.0.0.2:PORT", the foreign host (CDN and request recorder).
func (r *Registry) ForeignURL() string { return "http://" + r.foreign.ln.Addr().String() }

// OtherPortURL is "http://<plain listener IP>:PORT", the foreign host's recorder on the
// registry's own IP and another port (redirect targets that differ from the registry only in
// their port).
func (r *Registry) OtherPortURL() string { return "http://" + r.otherPort.ln.Addr().String() }

// CAPEM returns the CA certificate that signed the TLS listener's certificate.
func (r *Registry) CAPEM() []byte { return r.ca.CertPEM() }

// CAFile is the path of a file holding CAPEM, under a temp dir removed by Close.
func (r *Registry) CAFile() string { return filepath.Join(r.dir, "ca.pem") }

// Journal returns the request journal of all listeners.
func (r *Registry) Journal() *journal.Journal { return r.journal }

// Faults returns the fault rules applied on all listeners.
func (r *Registry) Faults() *faults.Set { return r.faults }

// Auth returns the token service and auth policy of the plain and TLS listeners.
func (r *Registry) Auth() *auth.Service { return r.auth }

// Gates returns the request gates of all listeners.
func (r *Registry) Gates() *gates.Set { return r.gates }

// Store returns the content store (tests and tools that need more than the seeding API).
func (r *Registry) Store() *store.Store { return r.store }

// PutBlob stores data in repo under its sha256 digest.
func (r *Registry) PutBlob(repo string, data []byte) (digest.Digest, error) {
	d, err := r.store.PutBlob(repo, data)
	if err != nil {
		return "", fmt.Errorf("registry: put blob in %s: %w", repo, err)
	}
	return d, nil
}

// PutBlobUnchecked stores data in repo under d; the bytes need not match d (broken fixtures).
func (r *Registry) PutBlobUnchecked(repo string, d digest.Digest, data []byte) error {
	if err := r.store.PutBlobUnchecked(repo, d, data); err != nil {
		return fmt.Errorf("registry: put blob %s in %s: %w", d, repo, err)
	}
	return nil
}

// PutManifest stores raw with mediaType in repo and returns the digest it is served under
// (signed schema 1: the canonical digest of the signed payload). tag may be "" (digest only).
// mediaType "" is detected from the content. Referenced blobs need not exist.
func (r *Registry) PutManifest(repo, tag, mediaType string, raw []byte) (digest.Digest, error) {
	d, err := r.store.PutManifest(repo, tag, mediaType, raw)
	if err != nil {
		return "", fmt.Errorf("registry: put manifest %s:%s: %w", repo, tag, err)
	}
	return d, nil
}

// Tag creates or moves tag in repo to the manifest d, which must be in repo.
func (r *Registry) Tag(repo, tag string, d digest.Digest) error {
	if err := r.store.Tag(repo, tag, d); err != nil {
		return fmt.Errorf("registry: tag %s:%s: %w", repo, tag, err)
	}
	return nil
}

// DeleteTag removes tag from repo (the manifest stays).
func (r *Registry) DeleteTag(repo, tag string) error {
	if err := r.store.DeleteTag(repo, tag); err != nil {
		return fmt.Errorf("registry: delete tag %s:%s: %w", repo, tag, err)
	}
	return nil
}
