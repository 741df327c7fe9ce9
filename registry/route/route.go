// Package route classifies a distribution API request path, so that the registry's journal, faults,
// gates and auth all agree on which repository, reference and digest a request is about.
//
// The grammar follows the OCI distribution spec: a repository name is one or more path components
// (each [a-z0-9]+ joined by '.', '_', '__' or '-' runs), and the operation is found by scanning for
// the last "/manifests/", "/blobs/", "/tags/list" or "/referrers/" marker.
package route

import (
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Kind names what a request is about.
type Kind string

// Kinds of requests.
const (
	KindPing      Kind = "ping"      // GET /v2/
	KindManifest  Kind = "manifest"  // /v2/<name>/manifests/<reference>
	KindBlob      Kind = "blob"      // /v2/<name>/blobs/<digest>
	KindUpload    Kind = "upload"    // /v2/<name>/blobs/uploads/[<session>]
	KindTags      Kind = "tags"      // /v2/<name>/tags/list
	KindReferrers Kind = "referrers" // /v2/<name>/referrers/<digest>
	KindCatalog   Kind = "catalog"   // /v2/_catalog
	KindToken     Kind = "token"     // /token (the co-located token service)
	KindForeign   Kind = "foreign"   // /blobs/<digest> on the foreign host
	KindOther     Kind = "other"
)

// Route is the parsed form of a request path.
type Route struct {
	Kind      Kind
	Repo      string        // repository name, "" when the path names none
	Namespace string        // first component of Repo (selects the auth variant)
	Reference string        // tag or digest string for manifests; upload session id for uploads
	Digest    digest.Digest // parsed digest (blob path, digest manifest reference); "" when none or invalid
	// ValidName is false when the path had the shape of a repository request but the name is
	// not a valid repository name (the registry answers NAME_INVALID).
	ValidName bool
}

var repoName = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// ValidRepo reports whether name is a valid repository name.
func ValidRepo(name string) bool { return len(name) <= 255 && repoName.MatchString(name) }

// Parse classifies a URL path (without query).
func Parse(path string) Route {
	switch {
	case path == "/v2" || path == "/v2/":
		return Route{Kind: KindPing, ValidName: true}
	case path == "/v2/_catalog":
		return Route{Kind: KindCatalog, ValidName: true}
	case path == "/token" || strings.HasPrefix(path, "/token/"):
		return Route{Kind: KindToken, ValidName: true}
	case strings.HasPrefix(path, "/blobs/"):
		r := Route{Kind: KindForeign, Reference: strings.TrimPrefix(path, "/blobs/"), ValidName: true}
		r.Digest = parseDigest(r.Reference)
		return r
	case !strings.HasPrefix(path, "/v2/"):
		return Route{Kind: KindOther, ValidName: true}
	}
	rest := strings.TrimPrefix(path, "/v2/")
	for _, m := range []struct {
		marker string
		kind   Kind
	}{
		{"/blobs/uploads", KindUpload},
		{"/manifests/", KindManifest},
		{"/blobs/", KindBlob},
		{"/tags/list", KindTags},
		{"/referrers/", KindReferrers},
	} {
		i := strings.LastIndex(rest, m.marker)
		if i <= 0 {
			continue
		}
		r := Route{Kind: m.kind, Repo: rest[:i]}
		tail := rest[i+len(m.marker):]
		switch m.kind {
		case KindUpload:
			tail = strings.TrimPrefix(tail, "/")
			r.Reference = tail
		case KindTags:
			if tail != "" {
				continue
			}
		default:
			r.Reference = tail
			r.Digest = parseDigest(tail)
		}
		r.ValidName = ValidRepo(r.Repo)
		r.Namespace, _, _ = strings.Cut(r.Repo, "/")
		return r
	}
	return Route{Kind: KindOther, ValidName: true}
}

func parseDigest(s string) digest.Digest {
	d, err := digest.Parse(s)
	if err != nil {
		return ""
	}
	return d
}
