// Package store is the fixture registry's in-memory content store: blobs linked per repository,
// manifests keyed by their (canonical) digest, tags, and blob upload sessions.
//
// It is written by hand rather than reused from go-containerregistry's pkg/registry because that
// handler keeps manifests and upload sessions in unexported state: the fixture registry must seed
// content from Go without HTTP, store blobs whose bytes do not match their digest (broken
// fixtures), key signed schema1 manifests by their canonical digest, scope blobs to repositories
// (cross-repo mount) and report upload status, none of which can be layered on top of it.
package store

import (
	"crypto/rand"
	_ "crypto/sha512" // sha512 digests (OCI image-spec registers both algorithms)
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/registry/route"
)

// Errors returned by the store; callers map them to distribution error codes.
var (
	ErrNameInvalid     = errors.New("invalid repository name")
	ErrTagInvalid      = errors.New("invalid tag")
	ErrDigestInvalid   = errors.New("invalid digest")
	ErrBlobUnknown     = errors.New("blob unknown to registry")
	ErrManifestUnknown = errors.New("manifest unknown")
	ErrManifestInvalid = errors.New("manifest invalid")
	ErrUploadUnknown   = errors.New("blob upload unknown")
	ErrRangeInvalid    = errors.New("invalid content range")
	// ErrUploadTooLarge: a session grew past Limits.MaxUploadBytes, or all open sessions together
	// past Limits.MaxPendingBytes; the session is discarded.
	ErrUploadTooLarge = errors.New("blob upload too large")
	// ErrTooManyUploads: Limits.MaxUploads sessions are open already.
	ErrTooManyUploads = errors.New("too many open blob uploads")
)

// Limits bound what upload sessions may hold: the store is in memory, and a client that opens
// sessions or sends bytes without end must get an error, not exhaust the process.
type Limits struct {
	MaxUploadBytes  int64 // bytes one session may receive (0: DefaultLimits; <0: no limit)
	MaxUploads      int   // sessions open at once (0: DefaultLimits; <0: no limit)
	MaxPendingBytes int64 // bytes all open sessions may hold together (0: DefaultLimits; <0: no limit)
}

// DefaultLimits: a 1 GiB layer still uploads; 256 open sessions and 2 GiB in flight are far
// above what any client of a fixture registry needs.
func DefaultLimits() Limits {
	return Limits{MaxUploadBytes: 1 << 30, MaxUploads: 256, MaxPendingBytes: 2 << 30}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxUploadBytes == 0 {
		l.MaxUploadBytes = d.MaxUploadBytes
	}
	if l.MaxUploads == 0 {
		l.MaxUploads = d.MaxUploads
	}
	if l.MaxPendingBytes == 0 {
		l.MaxPendingBytes = d.MaxPendingBytes
	}
	return l
}

var tagRe = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// ValidTag reports whether t is a valid tag (OCI distribution spec grammar).
func ValidTag(t string) bool { return tagRe.MatchString(t) }

// Manifest is one stored manifest.
type Manifest struct {
	Digest    digest.Digest // canonical digest (signed schema1: digest of the signed payload)
	MediaType string
	Raw       []byte // bytes as served
}

type repo struct {
	blobs     map[digest.Digest][]byte
	manifests map[digest.Digest]Manifest
	tags      map[string]digest.Digest
}

// Upload is a blob upload session.
type Upload struct {
	ID   string
	Repo string
	data []byte
}

// Store holds everything a registry serves. The zero value is not usable; call New.
type Store struct {
	mu sync.RWMutex
	// verified holds blob bytes that match their digest, across repositories (what the foreign
	// host serves); repositories link to blobs through repo.blobs, which may also hold unchecked
	// bytes.
	verified map[digest.Digest][]byte
	repos    map[string]*repo
	uploads  map[string]*Upload
	pending  int64 // bytes held by open upload sessions
	limits   Limits
}

// New returns an empty store with DefaultLimits.
func New() *Store { return NewWithLimits(Limits{}) }

// NewWithLimits returns an empty store with limits (zero fields take DefaultLimits).
func NewWithLimits(l Limits) *Store {
	return &Store{
		verified: map[digest.Digest][]byte{},
		repos:    map[string]*repo{},
		uploads:  map[string]*Upload{},
		limits:   l.withDefaults(),
	}
}

func checkRepo(name string) error {
	if !route.ValidRepo(name) {
		return fmt.Errorf("%w: %q", ErrNameInvalid, name)
	}
	return nil
}

func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrDigestInvalid, string(d), err)
	}
	return nil
}

// repoLocked returns the repository, creating it when create is set. Callers hold s.mu.
func (s *Store) repoLocked(name string, create bool) *repo {
	r := s.repos[name]
	if r == nil && create {
		r = &repo{
			blobs:     map[digest.Digest][]byte{},
			manifests: map[digest.Digest]Manifest{},
			tags:      map[string]digest.Digest{},
		}
		s.repos[name] = r
	}
	return r
}

// PutBlob stores data in repo under its sha256 digest.
func (s *Store) PutBlob(repoName string, data []byte) (digest.Digest, error) {
	if err := checkRepo(repoName); err != nil {
		return "", err
	}
	d := digest.FromBytes(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkLocked(repoName, d, data, true)
	return d, nil
}

// PutBlobVerified stores data in repo under d after checking that data matches d (any
// registered algorithm).
func (s *Store) PutBlobVerified(repoName string, d digest.Digest, data []byte) error {
	if err := checkRepo(repoName); err != nil {
		return err
	}
	if err := checkDigest(d); err != nil {
		return err
	}
	if got := d.Algorithm().FromBytes(data); got != d {
		return fmt.Errorf("%w: content of %d bytes has digest %s, not %s", ErrDigestInvalid, len(data), got, d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkLocked(repoName, d, data, true)
	return nil
}

// PutBlobUnchecked stores data in repo under d without checking that data matches d.
func (s *Store) PutBlobUnchecked(repoName string, d digest.Digest, data []byte) error {
	if err := checkRepo(repoName); err != nil {
		return err
	}
	if err := checkDigest(d); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkLocked(repoName, d, data, d.Algorithm().FromBytes(data) == d)
	return nil
}

func (s *Store) linkLocked(repoName string, d digest.Digest, data []byte, verified bool) {
	data = slices.Clone(data)
	s.repoLocked(repoName, true).blobs[d] = data
	if verified {
		s.verified[d] = data
	}
}

// Blob returns the bytes linked in repo under d.
func (s *Store) Blob(repoName string, d digest.Digest) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.repos[repoName]
	if r == nil {
		return nil, false
	}
	b, ok := r.blobs[d]
	return b, ok
}

// AnyBlob returns the bytes of d from any repository, preferring bytes that match d (the foreign
// host serves blobs without a repository).
func (s *Store) AnyBlob(d digest.Digest) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b, ok := s.verified[d]; ok {
		return b, true
	}
	names := make([]string, 0, len(s.repos))
	for n := range s.repos {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic choice among unchecked copies
	for _, n := range names {
		if b, ok := s.repos[n].blobs[d]; ok {
			return b, true
		}
	}
	return nil, false
}

// Mount links blob d of repository from into repository to. It reports whether from had it.
func (s *Store) Mount(from, to string, d digest.Digest) (bool, error) {
	if err := checkRepo(from); err != nil {
		return false, err
	}
	if err := checkRepo(to); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.repos[from]
	if src == nil {
		return false, nil
	}
	b, ok := src.blobs[d]
	if !ok {
		return false, nil
	}
	s.repoLocked(to, true).blobs[d] = b
	return true, nil
}

// DeleteBlob unlinks d from repo. It reports whether it was linked.
func (s *Store) DeleteBlob(repoName string, d digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoName]
	if r == nil {
		return false
	}
	if _, ok := r.blobs[d]; !ok {
		return false
	}
	delete(r.blobs, d)
	return true
}

// PutManifest stores raw in repo under its canonical digest (see ManifestDigest) and, when tag is
// not empty, points tag at it. mediaType "" is detected from the content.
func (s *Store) PutManifest(repoName, tag, mediaType string, raw []byte) (digest.Digest, error) {
	return s.PutManifestAs(repoName, tag, mediaType, raw, "")
}

// PutManifestAs is PutManifest with the digest the client named: when want is not empty, the
// manifest is digested with want's algorithm and must match it.
func (s *Store) PutManifestAs(repoName, tag, mediaType string, raw []byte, want digest.Digest) (digest.Digest, error) {
	if err := checkRepo(repoName); err != nil {
		return "", err
	}
	if tag != "" && !ValidTag(tag) {
		return "", fmt.Errorf("%w: %q", ErrTagInvalid, tag)
	}
	if mediaType == "" {
		mt, err := DetectMediaType(raw)
		if err != nil {
			return "", err
		}
		mediaType = mt
	}
	d, err := ManifestDigest(mediaType, raw)
	if err != nil {
		return "", err
	}
	if want != "" {
		if err := checkDigest(want); err != nil {
			return "", err
		}
		if want.Algorithm() != d.Algorithm() {
			payload := raw
			if d != digest.FromBytes(raw) { // signed schema 1: digest the payload
				if payload, err = Schema1Payload(raw); err != nil {
					return "", err
				}
			}
			d = want.Algorithm().FromBytes(payload)
		}
		if d != want {
			return "", fmt.Errorf("%w: manifest has digest %s, not %s", ErrDigestInvalid, d, want)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(repoName, true)
	r.manifests[d] = Manifest{Digest: d, MediaType: mediaType, Raw: slices.Clone(raw)}
	if tag != "" {
		r.tags[tag] = d
	}
	return d, nil
}

// Manifest returns the manifest named by reference (a tag or a digest) in repo.
func (s *Store) Manifest(repoName, reference string) (Manifest, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.repos[repoName]
	if r == nil {
		return Manifest{}, fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repoName, reference)
	}
	d, err := digest.Parse(reference)
	if err != nil {
		t, ok := r.tags[reference]
		if !ok {
			return Manifest{}, fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repoName, reference)
		}
		d = t
	}
	m, ok := r.manifests[d]
	if !ok {
		return Manifest{}, fmt.Errorf("%w: %s@%s", ErrManifestUnknown, repoName, d)
	}
	return m, nil
}

// Manifests returns every manifest of repo, sorted by digest.
func (s *Store) Manifests(repoName string) []Manifest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.repos[repoName]
	if r == nil {
		return nil
	}
	out := make([]Manifest, 0, len(r.manifests))
	for _, m := range r.manifests {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out
}

// Tag creates or moves tag in repo to manifest d, which must exist there.
func (s *Store) Tag(repoName, tag string, d digest.Digest) error {
	if err := checkRepo(repoName); err != nil {
		return err
	}
	if !ValidTag(tag) {
		return fmt.Errorf("%w: %q", ErrTagInvalid, tag)
	}
	if err := checkDigest(d); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.manifestRepoLocked(repoName, d)
	if err != nil {
		return err
	}
	r.tags[tag] = d
	return nil
}

// manifestRepoLocked returns repo when it holds manifest d. Callers hold s.mu.
func (s *Store) manifestRepoLocked(repoName string, d digest.Digest) (*repo, error) {
	r := s.repos[repoName]
	if r == nil {
		return nil, fmt.Errorf("%w: %s@%s", ErrManifestUnknown, repoName, d)
	}
	if _, ok := r.manifests[d]; !ok {
		return nil, fmt.Errorf("%w: %s@%s", ErrManifestUnknown, repoName, d)
	}
	return r, nil
}

// tagged returns what tag names in r (a nil r has no tags).
func (r *repo) tagged(tag string) (digest.Digest, bool) {
	if r == nil {
		return "", false
	}
	d, ok := r.tags[tag]
	return d, ok
}

// DeleteTag removes tag from repo; the manifest stays.
func (s *Store) DeleteTag(repoName, tag string) error {
	if err := checkRepo(repoName); err != nil {
		return err
	}
	if !ValidTag(tag) {
		return fmt.Errorf("%w: %q", ErrTagInvalid, tag)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoName]
	if _, ok := r.tagged(tag); !ok {
		return fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repoName, tag)
	}
	delete(r.tags, tag)
	return nil
}

// DeleteManifest removes manifest d from repo and every tag pointing at it (as distribution does).
func (s *Store) DeleteManifest(repoName string, d digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.manifestRepoLocked(repoName, d)
	if err != nil {
		return err
	}
	delete(r.manifests, d)
	for t, td := range r.tags {
		if td == d {
			delete(r.tags, t)
		}
	}
	return nil
}

// Tags returns the tags of repo, sorted, and whether the repository exists.
func (s *Store) Tags(repoName string) ([]string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.repos[repoName]
	if r == nil {
		return nil, false
	}
	out := make([]string, 0, len(r.tags))
	for t := range r.tags {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, true
}

// Repositories returns every repository name, sorted.
func (s *Store) Repositories() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.repos))
	for n := range s.repos {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// StartUpload opens an upload session in repo.
func (s *Store) StartUpload(repoName string) (*Upload, error) {
	if err := checkRepo(repoName); err != nil {
		return nil, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("upload id: %w", err)
	}
	u := &Upload{ID: hex.EncodeToString(b[:]), Repo: repoName}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.limits.MaxUploads; n > 0 && len(s.uploads) >= n {
		return nil, fmt.Errorf("%w: %d sessions are open (the limit); finish or cancel one", ErrTooManyUploads, len(s.uploads))
	}
	s.uploads[u.ID] = u
	return u, nil
}

// UploadSize returns the number of bytes received by session id of repo.
func (s *Store) UploadSize(repoName, id string) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, err := s.uploadLocked(repoName, id)
	if err != nil {
		return 0, err
	}
	return int64(len(u.data)), nil
}

func (s *Store) uploadLocked(repoName, id string) (*Upload, error) {
	u, ok := s.uploads[id]
	if !ok || u.Repo != repoName {
		return nil, fmt.Errorf("%w: %q in %s", ErrUploadUnknown, id, repoName)
	}
	return u, nil
}

// AppendUpload appends chunk to session id. start is the offset the client claims the chunk
// begins at (-1 when it sent no Content-Range); it must equal the bytes received so far. It
// returns the new size.
func (s *Store) AppendUpload(repoName, id string, start int64, chunk []byte) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.uploadLocked(repoName, id)
	if err != nil {
		return 0, err
	}
	if start >= 0 && start != int64(len(u.data)) {
		return int64(len(u.data)), fmt.Errorf("%w: chunk starts at %d, upload has %d bytes", ErrRangeInvalid, start, len(u.data))
	}
	if err := s.admitLocked(u, int64(len(chunk))); err != nil {
		return 0, err
	}
	u.data = append(u.data, chunk...)
	s.pending += int64(len(chunk))
	return int64(len(u.data)), nil
}

// FinishUpload appends the final chunk (start as for AppendUpload), verifies the content against
// d, links the blob into the session's repository and closes the session. On any error the
// session stays as it was.
func (s *Store) FinishUpload(repoName, id string, start int64, d digest.Digest, chunk []byte) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.uploadLocked(repoName, id)
	if err != nil {
		return err
	}
	if start >= 0 && start != int64(len(u.data)) {
		return fmt.Errorf("%w: chunk starts at %d, upload has %d bytes", ErrRangeInvalid, start, len(u.data))
	}
	if err := s.admitLocked(u, int64(len(chunk))); err != nil {
		return err
	}
	data := append(slices.Clone(u.data), chunk...)
	if got := d.Algorithm().FromBytes(data); got != d {
		return fmt.Errorf("%w: uploaded %d bytes have digest %s, not %s", ErrDigestInvalid, len(data), got, d)
	}
	s.dropLocked(u)
	s.linkLocked(repoName, d, data, true)
	return nil
}

// admitLocked checks that n more bytes fit session u and the pending total; when they do not,
// the session is discarded (its bytes are useless without the rest) and the error says why.
func (s *Store) admitLocked(u *Upload, n int64) error {
	size := int64(len(u.data)) + n
	if m := s.limits.MaxUploadBytes; m > 0 && size > m {
		s.dropLocked(u)
		return fmt.Errorf("%w: session %s would hold %d bytes, over the limit of %d per upload; the session is discarded", ErrUploadTooLarge, u.ID, size, m)
	}
	if m := s.limits.MaxPendingBytes; m > 0 && s.pending+n > m {
		s.dropLocked(u)
		return fmt.Errorf("%w: open uploads would hold %d bytes, over the limit of %d; session %s is discarded", ErrUploadTooLarge, s.pending+n, m, u.ID)
	}
	return nil
}

// dropLocked closes session u.
func (s *Store) dropLocked(u *Upload) {
	if _, ok := s.uploads[u.ID]; ok {
		delete(s.uploads, u.ID)
		s.pending -= int64(len(u.data))
	}
}

// CancelUpload discards session id.
func (s *Store) CancelUpload(repoName, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.uploadLocked(repoName, id)
	if err != nil {
		return err
	}
	s.dropLocked(u)
	return nil
}
