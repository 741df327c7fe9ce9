package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types the registry knows by name.
const (
	MediaTypeSchema1       = string(types.DockerManifestSchema1)
	MediaTypeSchema1Signed = string(types.DockerManifestSchema1Signed)
	MediaTypeSchema2       = string(types.DockerManifestSchema2)
	MediaTypeManifestList  = string(types.DockerManifestList)
	MediaTypeOCIManifest   = ocispec.MediaTypeImageManifest
	MediaTypeOCIIndex      = ocispec.MediaTypeImageIndex
)

// IsSchema1 reports whether mediaType names a Docker schema 1 manifest.
func IsSchema1(mediaType string) bool {
	return mediaType == MediaTypeSchema1 || mediaType == MediaTypeSchema1Signed
}

// probe holds the fields that tell manifest formats apart.
type probe struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Signatures    json.RawMessage `json:"signatures"`
	Manifests     json.RawMessage `json:"manifests"`
	Config        json.RawMessage `json:"config"`
}

// DetectMediaType guesses the media type of a manifest from its content: the mediaType field,
// else schema 1 (signed when it has signatures), else an OCI index or manifest by shape.
func DetectMediaType(raw []byte) (string, error) {
	var p probe
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("%w: not JSON: %v", ErrManifestInvalid, err)
	}
	switch {
	case p.MediaType != "":
		return p.MediaType, nil
	case p.SchemaVersion == 1 && len(p.Signatures) > 0:
		return MediaTypeSchema1Signed, nil
	case p.SchemaVersion == 1:
		return MediaTypeSchema1, nil
	case len(p.Manifests) > 0:
		return MediaTypeOCIIndex, nil
	case len(p.Config) > 0:
		return MediaTypeOCIManifest, nil
	}
	return "", fmt.Errorf("%w: cannot tell the media type (no mediaType, schemaVersion %d)", ErrManifestInvalid, p.SchemaVersion)
}

// ManifestDigest returns the digest a registry serves raw under: sha256 of the bytes, except for
// a signed schema 1 manifest, whose digest is that of the signed payload (signatures stripped).
func ManifestDigest(mediaType string, raw []byte) (digest.Digest, error) {
	if mediaType == MediaTypeSchema1Signed || (IsSchema1(mediaType) && hasSignatures(raw)) {
		payload, err := Schema1Payload(raw)
		if err != nil {
			return "", err
		}
		return digest.FromBytes(payload), nil
	}
	return digest.FromBytes(raw), nil
}

func hasSignatures(raw []byte) bool {
	var p probe
	return json.Unmarshal(raw, &p) == nil && len(p.Signatures) > 0
}

// jwsProtected is the libtrust "pretty JWS" protected header.
type jwsProtected struct {
	FormatLength int    `json:"formatLength"`
	FormatTail   string `json:"formatTail"`
}

// Schema1Payload returns the signed payload of a libtrust pretty-JWS schema 1 manifest:
// raw[:formatLength] + base64url(formatTail), both from the signatures' protected header.
//
// Written by hand: the pinned libraries read schema 1 (ggcr trusts the registry's digest header,
// containerd v2 dropped schema 1) but none of them computes the canonical digest; libtrust and
// distribution v2's schema1 package are not dependencies of this module. Signatures are not
// verified: fixtures decide which manifests are valid.
func Schema1Payload(raw []byte) ([]byte, error) {
	var m struct {
		Signatures []struct {
			Protected string `json:"protected"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: signed schema1: %v", ErrManifestInvalid, err)
	}
	if len(m.Signatures) == 0 {
		return nil, fmt.Errorf("%w: signed schema1 manifest has no signatures", ErrManifestInvalid)
	}
	var payload []byte
	for i, sig := range m.Signatures {
		hdr, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(sig.Protected, "="))
		if err != nil {
			return nil, fmt.Errorf("%w: signature %d: protected header: %v", ErrManifestInvalid, i, err)
		}
		var p jwsProtected
		if err := json.Unmarshal(hdr, &p); err != nil {
			return nil, fmt.Errorf("%w: signature %d: protected header: %v", ErrManifestInvalid, i, err)
		}
		tail, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p.FormatTail, "="))
		if err != nil {
			return nil, fmt.Errorf("%w: signature %d: formatTail: %v", ErrManifestInvalid, i, err)
		}
		if p.FormatLength <= 0 || p.FormatLength > len(raw) {
			return nil, fmt.Errorf("%w: signature %d: formatLength %d outside the %d-byte manifest", ErrManifestInvalid, i, p.FormatLength, len(raw))
		}
		pl := append(append([]byte{}, raw[:p.FormatLength]...), tail...)
		if payload != nil && !bytes.Equal(payload, pl) {
			return nil, fmt.Errorf("%w: signatures %d and 0 sign different payloads", ErrManifestInvalid, i)
		}
		payload = pl
	}
	return payload, nil
}

// References lists what a manifest points at: blobs (config, layers; schema 1 fsLayers) and
// child manifests (index entries), plus its subject. Unknown formats yield nothing.
type References struct {
	Blobs     []digest.Digest
	Manifests []digest.Digest
	Subject   *ocispec.Descriptor
	// ArtifactType is artifactType, else config.mediaType (OCI referrers rule).
	ArtifactType string
	Annotations  map[string]string
}

// ParseReferences parses raw as mediaType and returns what it references.
func ParseReferences(mediaType string, raw []byte) (References, error) {
	var out References
	switch {
	case IsSchema1(mediaType):
		var m struct {
			FSLayers []struct {
				BlobSum digest.Digest `json:"blobSum"`
			} `json:"fsLayers"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return out, fmt.Errorf("%w: %v", ErrManifestInvalid, err)
		}
		for _, l := range m.FSLayers {
			out.Blobs = append(out.Blobs, l.BlobSum)
		}
	case mediaType == MediaTypeOCIIndex || mediaType == MediaTypeManifestList:
		var m ocispec.Index
		if err := json.Unmarshal(raw, &m); err != nil {
			return out, fmt.Errorf("%w: %v", ErrManifestInvalid, err)
		}
		for _, c := range m.Manifests {
			out.Manifests = append(out.Manifests, c.Digest)
		}
		out.Subject, out.ArtifactType, out.Annotations = m.Subject, m.ArtifactType, m.Annotations
	default:
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return out, fmt.Errorf("%w: %v", ErrManifestInvalid, err)
		}
		if m.Config.Digest != "" {
			out.Blobs = append(out.Blobs, m.Config.Digest)
		}
		for _, l := range m.Layers {
			// Foreign (non-distributable) layers live at their URLs, not in the registry.
			if len(l.URLs) > 0 && !types.MediaType(l.MediaType).IsDistributable() {
				continue
			}
			out.Blobs = append(out.Blobs, l.Digest)
		}
		out.Subject, out.Annotations = m.Subject, m.Annotations
		out.ArtifactType = m.ArtifactType
		if out.ArtifactType == "" {
			out.ArtifactType = m.Config.MediaType
		}
	}
	return out, nil
}
