// Package registry runs the hermetic fixture registry: one in-memory store served on four
// loopback listeners — plain HTTP, TLS (certificate from a CA generated at start), a foreign host
// on another loopback IP (a CDN / blob store that redirects point at) and the foreign host's
// recorder on the registry's IP, another port — each wrapped, from the outside in, by the journal,
// gates, faults and auth before the distribution API.
//
// Loopback is the rule. Options.AllowRemote lifts it, explicitly, for a runtime on another
// machine: the listeners then bind a given interface IP (never 0.0.0.0 or ::), and the endpoints
// the registry reports carry Options.Advertise, the host name or address that machine reaches the
// registry under (see docs/remote.md).
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
	"slices"
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
	// Listen addresses; "" means ListenIP:0 (plain, TLS), 127.0.0.2:0 (foreign; ListenIP:0 when
	// ListenIP is not loopback) and the plain listener's IP, port 0 (other-port). Only loopback
	// addresses (127.0.0.0/8, ::1, localhost) are accepted unless AllowRemote is set.
	PlainAddr, TLSAddr, ForeignAddr, OtherPortAddr string
	// ListenIP is the IP of the listeners whose address is "" (default 127.0.0.1).
	ListenIP string
	// AllowRemote lifts the loopback rule for the listen addresses and Advertise: any specific IP
	// of this machine may be listened on (the unspecified 0.0.0.0 and :: never are), so that a
	// runtime on another machine can pull. The control API and everything else stay on loopback.
	AllowRemote bool
	// Advertise is the host (a DNS name or an IP literal, no port) the plain, TLS and other-port
	// listeners are reported under — PlainHost, TLSAddr, OtherPortURL, and so every image
	// reference, hosts.toml and registries.conf built from them — instead of their listen IP. It
	// is added to the TLS certificate's SANs. "" = the listen IPs. Not loopback: needs AllowRemote.
	// The foreign host is always reported by its listen IP, which must differ from the registry's
	// reported host (a redirect to it must cross to another host; see ForeignURL).
	Advertise string
	// TLSHostName is the DNS SAN of the TLS listener's certificate (plus Advertise, the TLS listen
	// IP, 127.0.0.1, ::1 and localhost).
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
	// advertise replaces the listen IP in PlainHost, TLSAddr and OtherPortURL ("" = keep it).
	advertise string
	remote    bool

	plain, tls, foreign, otherPort *server
}

type server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// ErrNotLoopback marks a listen address or advertised host outside loopback given without the
// explicit opt-in (Options.AllowRemote); callers name their own flag for it.
var ErrNotLoopback = errors.New("not a loopback address")

// CheckLoopback returns an error unless addr ("host:port") is on a loopback address: the rule for
// everything but the registry's listeners under Options.AllowRemote (the control API, redirect
// targets).
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("listen address %q is not loopback: only 127.0.0.0/8, [::1] and localhost are allowed", addr)
	}
	return nil
}

// CheckListen returns an error unless addr ("host:port") may be listened on: a loopback address
// (127.0.0.0/8, ::1, localhost), or — with allowRemote — any other specific IP. Names other than
// localhost and the unspecified addresses (0.0.0.0, ::, "") are always refused: a runtime on
// another machine reaches one interface, and the certificate names that interface's IP. The
// error wraps ErrNotLoopback when only allowRemote is missing.
func CheckListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil || ip.IsUnspecified():
		return fmt.Errorf("listen address %q is not loopback: the fixture registry only listens on 127.0.0.0/8 or [::1], or on one specific IP of this machine for a remote runtime (never every interface)", addr)
	case ip.IsLoopback() || allowRemote:
		return nil
	default:
		return fmt.Errorf("listen address %q: %w: the fixture registry only listens on 127.0.0.0/8 or [::1] unless serving other machines is allowed explicitly", addr, ErrNotLoopback)
	}
}

// checkAdvertise validates Options.Advertise: a DNS name or an IP literal, not unspecified;
// outside loopback only with allowRemote.
func checkAdvertise(host string, allowRemote bool) error {
	if ip := net.ParseIP(host); ip != nil {
		switch {
		case ip.IsUnspecified():
			return fmt.Errorf("advertised host %q is the unspecified address: name the address the runtime connects to", host)
		case !ip.IsLoopback() && !allowRemote:
			return fmt.Errorf("advertised host %q: %w: advertising a host other machines reach needs the explicit opt-in", host, ErrNotLoopback)
		}
		return nil
	}
	if !validDNSName(host) {
		return fmt.Errorf("advertised host %q is neither an IP address nor a DNS name (no port, no scheme)", host)
	}
	if !allowRemote && !strings.EqualFold(host, "localhost") {
		return fmt.Errorf("advertised host %q: %w: advertising a host other machines reach needs the explicit opt-in", host, ErrNotLoopback)
	}
	return nil
}

// validDNSName reports whether s is a DNS name: dot-separated labels of letters, digits and
// hyphens, none empty, none starting or ending with a hyphen.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// listenPlan is what Start listens on and how it reports it, defaults applied and checked.
type listenPlan struct {
	plain, tls, foreign string
	otherPort           string // "" = the plain listener's IP, port 0
	tlsName, advertise  string
	sans                []string // TLS certificate names and IPs
}

// planListeners applies Options' defaults and checks them: listen addresses on loopback unless
// AllowRemote, the advertised host, and a foreign host that is another host than the registry
// (a redirect to it must leave the registry's host: clients keep credentials for the same host
// name, whatever the port) and reachable wherever the registry is.
func planListeners(opts Options) (listenPlan, error) {
	listenIP := orDefault(opts.ListenIP, "127.0.0.1")
	ip := net.ParseIP(listenIP)
	if ip == nil {
		return listenPlan{}, fmt.Errorf("listen IP %q is not an IP address", listenIP)
	}
	foreignDefault := "127.0.0.2:0"
	if !ip.IsLoopback() {
		foreignDefault = net.JoinHostPort(listenIP, "0")
	}
	p := listenPlan{
		plain:     orDefault(opts.PlainAddr, net.JoinHostPort(listenIP, "0")),
		tls:       orDefault(opts.TLSAddr, net.JoinHostPort(listenIP, "0")),
		foreign:   orDefault(opts.ForeignAddr, foreignDefault),
		otherPort: opts.OtherPortAddr,
		tlsName:   orDefault(opts.TLSHostName, DefaultTLSHostName),
		advertise: opts.Advertise,
	}
	for _, a := range []string{p.plain, p.tls, p.foreign, orDefault(p.otherPort, p.plain)} {
		if err := CheckListen(a, opts.AllowRemote); err != nil {
			return listenPlan{}, err
		}
	}
	if strings.ContainsAny(p.tlsName, ":/ ") {
		return listenPlan{}, fmt.Errorf("TLS host name %q is not a host name", p.tlsName)
	}
	if p.advertise != "" {
		if err := checkAdvertise(p.advertise, opts.AllowRemote); err != nil {
			return listenPlan{}, err
		}
	}
	plainHost, _, _ := net.SplitHostPort(p.plain)
	foreignHost, _, _ := net.SplitHostPort(p.foreign)
	reported := orDefault(p.advertise, plainHost)
	if sameHost(reported, foreignHost) {
		return listenPlan{}, fmt.Errorf("the foreign host (%s) is the registry's own host %s: give the foreign host another IP of this machine, or advertise the registry under a host name (the foreign host is then reached by the IP)", p.foreign, reported)
	}
	tlsHost, _, _ := net.SplitHostPort(p.tls)
	otherHost := plainHost
	if p.otherPort != "" {
		otherHost, _, _ = net.SplitHostPort(p.otherPort)
	}
	for _, l := range []struct{ name, host string }{{"TLS", tlsHost}, {"other-port", otherHost}, {"foreign", foreignHost}} {
		if isLoopbackHost(l.host) && !isLoopbackHost(plainHost) {
			return listenPlan{}, fmt.Errorf("the %s listener is on loopback (%s) but the registry serves other machines on %s: a remote runtime could not reach it", l.name, l.host, plainHost)
		}
		if p.advertise != "" && l.name != "foreign" && !sameHost(l.host, plainHost) {
			return listenPlan{}, fmt.Errorf("the %s listener (%s) is not on the plain listener's IP %s: the advertised host %s names one machine address for both", l.name, l.host, plainHost, p.advertise)
		}
	}
	p.sans = uniqueFold(p.tlsName, p.advertise, tlsHost, "127.0.0.1", "::1", "localhost")
	return p, nil
}

// sameHost compares two hosts as HTTP clients do when deciding whether a redirect stays on the
// same host: names case-insensitively, IPs by value.
func sameHost(a, b string) bool {
	if ia, ib := net.ParseIP(a), net.ParseIP(b); ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(a, b)
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// uniqueFold drops empty strings and case-insensitive repeats, keeping the first spelling.
func uniqueFold(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, s) }) {
			out = append(out, s)
		}
	}
	return out
}

// Start listens on the four addresses and serves until Close. ctx bounds only the start-up.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	plan, err := planListeners(opts)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	plainAddr, tlsAddr, foreignAddr, tlsName := plan.plain, plan.tls, plan.foreign, plan.tlsName
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	j, err := journal.New()
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	j.SetMaxEntries(opts.MaxJournalEntries)
	r := &Registry{
		log: logger, store: store.NewWithLimits(opts.Limits), journal: j, gates: gates.New(), auth: auth.New(auth.Options{}),
		tlsName: tlsName, advertise: plan.advertise, remote: opts.AllowRemote,
	}
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
	cert, err := r.ca.Issue(plan.sans, 7*24*time.Hour)
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
	otherLn, err := listen(route.ListenerOtherPort, orDefault(plan.otherPort, net.JoinHostPort(plainIP, "0")))
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
	logger.Info("fixture registry started", "plain", r.PlainHost(), "tls", r.TLSAddr(), "foreign", r.ForeignURL(), "other-port", r.OtherPortURL(), "remote", r.remote)
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

// reported is addr ("IP:PORT" of a listener) under the advertised host, if there is one.
func (r *Registry) reported(addr string) string {
	if r.advertise == "" {
		return addr
	}
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(r.advertise, port)
}

// PlainHost is "127.0.0.1:PORT" of the plain HTTP listener (its listen IP, or Options.Advertise).
func (r *Registry) PlainHost() string { return r.reported(r.plain.ln.Addr().String()) }

// TLSAddr is "127.0.0.1:PORT" of the TLS listener (its listen IP, or Options.Advertise): the TLS
// listener by address rather than by TLSHostName.
func (r *Registry) TLSAddr() string { return r.reported(r.tls.ln.Addr().String()) }

// TLSHost is "<TLSHostName>:PORT": the TLS listener under its certificate's DNS name (resolving it
// to the listener's IP is the caller's business: /etc/hosts, a dialer, hosts.toml).
func (r *Registry) TLSHost() string {
	_, port, _ := net.SplitHostPort(r.tls.ln.Addr().String())
	return net.JoinHostPort(r.tlsName, port)
}

// TLSHostName is the DNS name in the TLS certificate.
func (r *Registry) TLSHostName() string { return r.tlsName }

// Remote reports whether the registry was started with Options.AllowRemote: its endpoints may be
// outside loopback, for a runtime on another machine.
func (r *Registry) Remote() bool { return r.remote }

// ForeignURL is "http://127.0.0.2:PORT", the foreign host (CDN and request recorder), always by
// its listen IP: another host than PlainHost's, so that clients treat a redirect there as
// leaving the registry.
func (r *Registry) ForeignURL() string { return "http://" + r.foreign.ln.Addr().String() }

// OtherPortURL is "http://<PlainHost's host>:PORT", the foreign host's recorder on the
// registry's own host and another port (redirect targets that differ from the registry only in
// their port).
func (r *Registry) OtherPortURL() string {
	return "http://" + r.reported(r.otherPort.ln.Addr().String())
}

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
