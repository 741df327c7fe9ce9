package pull

// Docker image manifest v2 schema 1 → Docker schema 2 conversion.
//
// Written by hand: containerd v2.1 removed its converter (remotes/docker/schema1) and nothing in
// the pinned dependencies converts (go-containerregistry only reads schema 1). The rules follow
// containerd v1.x's converter and distribution v2.8.3's format:
//
//   - signed manifests: the canonical payload is served[:formatLength] + formatTail from the first
//     signature's protected header (signatures stripped); its sha256 must equal the digest the
//     registry resolved to. Only that payload is parsed (CVE-2014-8179: keys outside the signed
//     part are ignored). Unsigned: the served bytes.
//   - fsLayers/history are top layer first; they are walked bottom-up. A history entry with
//     "throwaway": true (or, before that field existed, "Size": 0) is an empty layer: no blob is
//     fetched, the history entry gets empty_layer.
//   - every other layer blob is fetched (size unknown: FetchByDigest HEADs it), stored, and
//     decompressed on the way in to compute its diff ID.
//   - the config is the top v1Compatibility object (its image config, created, author, os,
//     architecture) plus rootfs and history; media types are Docker schema 2.
//
// What is stored: the canonical payload under its digest, media type
// application/vnd.docker.distribution.manifest.v1+json (it is unsigned now), with a GC label on
// the converted manifest. Result.Target is that payload (RepoDigests name the canonical digest,
// which the registry answers to), Result.Manifest the converted manifest.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/pkg/labels"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

const (
	mediaTypeSchema1Unsigned = "application/vnd.docker.distribution.manifest.v1+json"
	schema1ManifestLimit     = 8 << 20 // as containerd's converter
	// labelConvertedFrom marks the converted manifest with the schema 1 digest it came from.
	labelConvertedFrom = "io.criimage/converted-docker-schema1"
)

func isSchema1(mt string) bool {
	return mt == images.MediaTypeDockerSchema1Manifest || mt == mediaTypeSchema1Unsigned
}

type schema1Manifest struct {
	SchemaVersion int    `json:"schemaVersion"`
	Architecture  string `json:"architecture"`
	FSLayers      []struct {
		BlobSum digest.Digest `json:"blobSum"`
	} `json:"fsLayers"`
	History []struct {
		V1Compatibility string `json:"v1Compatibility"`
	} `json:"history"`
	// Present in other formats only; a schema 1 document must not have them.
	Config    json.RawMessage `json:"config,omitempty"`
	Layers    json.RawMessage `json:"layers,omitempty"`
	Manifests json.RawMessage `json:"manifests,omitempty"`
}

type v1Compat struct {
	ID              string    `json:"id"`
	Parent          string    `json:"parent,omitempty"`
	Created         time.Time `json:"created"`
	Author          string    `json:"author,omitempty"`
	Comment         string    `json:"comment,omitempty"`
	ThrowAway       *bool     `json:"throwaway,omitempty"`
	Size            *int64    `json:"Size,omitempty"`
	ContainerConfig struct {
		Cmd []string `json:"Cmd,omitempty"`
	} `json:"container_config"`
}

func (h v1Compat) empty() bool {
	if h.ThrowAway != nil {
		return *h.ThrowAway
	}
	return h.Size != nil && *h.Size == 0
}

func invalidSchema1(format string, args ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid schema 1 manifest: "+format, args...))
}

// convertSchema1 fetches the schema 1 manifest desc and its layers, and writes the canonical
// payload, a Docker schema 2 config and manifest to the content store. It returns the payload's
// descriptor (the pull's target) and the converted manifest's.
func (p *Puller) convertSchema1(ctx context.Context, fetcher remotes.Fetcher, desc ocispec.Descriptor) (target, converted ocispec.Descriptor, _ error) {
	byDigest, ok := fetcher.(remotes.FetcherByDigest)
	if !ok {
		return target, converted, fmt.Errorf("schema 1: fetcher cannot fetch by digest: %w", errdefs.ErrNotImplemented)
	}
	// containerd v2 no longer counts schema 1 as a manifest type, so Fetch would ask /blobs/;
	// FetchByDigest falls back to /manifests/.
	rc, _, err := byDigest.FetchByDigest(ctx, desc.Digest, remotes.WithMediaType(desc.MediaType))
	if err != nil {
		return target, converted, wrapf(err, "fetch schema 1 manifest %s", desc.Digest)
	}
	served, err := io.ReadAll(io.LimitReader(rc, schema1ManifestLimit+1))
	rc.Close()
	if err != nil {
		return target, converted, wrapf(err, "read schema 1 manifest %s", desc.Digest)
	}
	if len(served) > schema1ManifestLimit {
		return target, converted, invalidSchema1("larger than %d bytes", schema1ManifestLimit)
	}
	payload, err := schema1Payload(served)
	if err != nil {
		return target, converted, err
	}
	if got := digest.FromBytes(payload); got != desc.Digest {
		return target, converted, dataLossError{fmt.Errorf("schema 1 manifest: canonical digest %s, want %s", got, desc.Digest)}
	}
	var m schema1Manifest
	if err := json.Unmarshal(payload, &m); err != nil {
		return target, converted, invalidSchema1("%v", err)
	}
	if m.SchemaVersion != 1 || len(m.FSLayers) == 0 || len(m.FSLayers) != len(m.History) ||
		len(m.Config) != 0 || len(m.Layers) != 0 || len(m.Manifests) != 0 {
		return target, converted, invalidSchema1("want schemaVersion 1 and as many fsLayers as history entries (>0), and no config/layers/manifests")
	}

	// Bottom-up walk.
	n := len(m.History)
	hist := make([]v1Compat, n)
	for i := range n {
		if err := json.Unmarshal([]byte(m.History[i].V1Compatibility), &hist[i]); err != nil {
			return target, converted, invalidSchema1("history[%d].v1Compatibility: %v", i, err)
		}
		if err := m.FSLayers[i].BlobSum.Validate(); err != nil {
			return target, converted, invalidSchema1("fsLayers[%d].blobSum: %v", i, err)
		}
	}
	var blobs []digest.Digest // non-empty layers, bottom first
	for i := n - 1; i >= 0; i-- {
		if !hist[i].empty() {
			blobs = append(blobs, m.FSLayers[i].BlobSum)
		}
	}
	layers, err := p.fetchSchema1Layers(ctx, byDigest, blobs)
	if err != nil {
		return target, converted, err
	}

	// Config: the top entry, plus rootfs and history.
	var img ocispec.Image
	if err := json.Unmarshal([]byte(m.History[0].V1Compatibility), &img); err != nil {
		return target, converted, invalidSchema1("history[0].v1Compatibility: %v", err)
	}
	if img.Architecture == "" {
		img.Architecture = m.Architecture
	}
	img.RootFS = ocispec.RootFS{Type: "layers"}
	img.History = nil
	for i := n - 1; i >= 0; i-- {
		h := hist[i]
		created := h.Created
		img.History = append(img.History, ocispec.History{
			Created: &created, Author: h.Author, Comment: h.Comment,
			CreatedBy: strings.Join(h.ContainerConfig.Cmd, " "), EmptyLayer: h.empty(),
		})
	}
	for _, l := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.diffID)
	}
	cb, err := json.Marshal(img)
	if err != nil {
		return target, converted, wrapf(err, "schema 1: marshal config")
	}
	config := ocispec.Descriptor{MediaType: images.MediaTypeDockerSchema2Config, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	mf := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: images.MediaTypeDockerSchema2Manifest, Config: config}
	for _, l := range layers {
		mf.Layers = append(mf.Layers, l.desc)
	}
	mb, err := json.Marshal(mf)
	if err != nil {
		return target, converted, wrapf(err, "schema 1: marshal manifest")
	}
	converted = ocispec.Descriptor{MediaType: images.MediaTypeDockerSchema2Manifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	target = ocispec.Descriptor{MediaType: mediaTypeSchema1Unsigned, Digest: desc.Digest, Size: int64(len(payload))}

	cs := p.b.Content
	if err := content.WriteBlob(ctx, cs, remotes.MakeRefKey(ctx, config), bytes.NewReader(cb), config); err != nil {
		return target, converted, wrapf(err, "schema 1: write config")
	}
	if err := content.WriteBlob(ctx, cs, remotes.MakeRefKey(ctx, converted), bytes.NewReader(mb), converted,
		content.WithLabels(map[string]string{labelConvertedFrom: desc.Digest.String()})); err != nil {
		return target, converted, wrapf(err, "schema 1: write converted manifest")
	}
	if err := content.WriteBlob(ctx, cs, remotes.MakeRefKey(ctx, target), bytes.NewReader(payload), target,
		content.WithLabels(map[string]string{"containerd.io/gc.ref.content.converted": converted.Digest.String()})); err != nil {
		return target, converted, wrapf(err, "schema 1: write manifest")
	}
	return target, converted, nil
}

type schema1Layer struct {
	desc   ocispec.Descriptor
	diffID digest.Digest
}

// fetchSchema1Layers fetches each blob (3 at a time, each distinct blob once) and computes diff IDs.
func (p *Puller) fetchSchema1Layers(ctx context.Context, f remotes.FetcherByDigest, blobs []digest.Digest) ([]schema1Layer, error) {
	uniq := map[digest.Digest]*schema1Layer{}
	for _, d := range blobs {
		uniq[d] = &schema1Layer{}
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(3)
	for d, l := range uniq {
		eg.Go(func() error {
			var err error
			*l, err = p.fetchSchema1Layer(ectx, f, d)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	out := make([]schema1Layer, len(blobs))
	for i, d := range blobs {
		out[i] = *uniq[d]
	}
	return out, nil
}

func (p *Puller) fetchSchema1Layer(ctx context.Context, f remotes.FetcherByDigest, d digest.Digest) (schema1Layer, error) {
	cs := p.b.Content
	if l, err, ok := p.schema1LayerFromStore(ctx, d); ok {
		return l, err
	}
	rc, desc, err := f.FetchByDigest(ctx, d)
	if err != nil {
		return schema1Layer{}, wrapf(err, "schema 1: fetch layer %s", d)
	}
	defer rc.Close()
	desc.Digest = d
	w, err := content.OpenWriter(ctx, cs, content.WithRef(remotes.MakeRefKey(ctx, desc)), content.WithDescriptor(desc))
	if errdefs.IsAlreadyExists(err) {
		// Written by another pull meanwhile.
		if l, err, ok := p.schema1LayerFromStore(ctx, d); ok {
			return l, err
		}
	}
	if err != nil {
		return schema1Layer{}, wrapf(err, "schema 1: store layer %s", d)
	}
	defer w.Close()
	pr, pw := io.Pipe()
	var diffID digest.Digest
	eg := errgroup.Group{}
	eg.Go(func() error {
		var err error
		diffID, err = diffIDOf(pr)
		pr.CloseWithError(err)
		if err != nil {
			return dataLossError{fmt.Errorf("schema 1: layer %s: %w", d, err)}
		}
		return nil
	})
	copyErr := content.Copy(ctx, w, io.TeeReader(rc, pw), desc.Size, d)
	pw.CloseWithError(copyErr)
	if err := errors.Join(copyErr, eg.Wait()); err != nil && !errdefs.IsAlreadyExists(copyErr) {
		return schema1Layer{}, classifyUnpack(wrapf(err, "schema 1: layer %s", d))
	}
	return p.labelSchema1Layer(ctx, d, desc.Size, diffID)
}

// schema1LayerFromStore computes the layer from the content store when the blob is there.
func (p *Puller) schema1LayerFromStore(ctx context.Context, d digest.Digest) (schema1Layer, error, bool) {
	cs := p.b.Content
	if info, err := cs.Info(ctx, d); err == nil {
		if diffID, err := digest.Parse(info.Labels[labels.LabelUncompressed]); err == nil {
			return schema1Layer{desc: layerDesc(d, info.Size, diffID), diffID: diffID}, nil, true
		}
		ra, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: d, Size: info.Size})
		if err != nil {
			return schema1Layer{}, wrapf(err, "schema 1: read layer %s", d), true
		}
		defer ra.Close()
		diffID, err := diffIDOf(content.NewReader(ra))
		if err != nil {
			return schema1Layer{}, dataLossError{fmt.Errorf("schema 1: layer %s: %w", d, err)}, true
		}
		l, err := p.labelSchema1Layer(ctx, d, info.Size, diffID)
		return l, err, true
	}
	return schema1Layer{}, nil, false
}

func (p *Puller) labelSchema1Layer(ctx context.Context, d digest.Digest, size int64, diffID digest.Digest) (schema1Layer, error) {
	if _, err := p.b.Content.Update(ctx, content.Info{Digest: d, Labels: map[string]string{labels.LabelUncompressed: diffID.String()}},
		"labels."+labels.LabelUncompressed); err != nil {
		return schema1Layer{}, wrapf(err, "schema 1: label layer %s", d)
	}
	return schema1Layer{desc: layerDesc(d, size, diffID), diffID: diffID}, nil
}

func layerDesc(d digest.Digest, size int64, diffID digest.Digest) ocispec.Descriptor {
	mt := images.MediaTypeDockerSchema2LayerGzip
	if diffID == d {
		mt = images.MediaTypeDockerSchema2Layer // stored uncompressed
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: size}
}

// diffIDOf decompresses r (gzip, zstd or none) and digests the tar stream.
func diffIDOf(r io.Reader) (digest.Digest, error) {
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return "", err
	}
	defer ds.Close()
	dg := digest.Canonical.Digester()
	if _, err := io.Copy(dg.Hash(), ds); err != nil {
		return "", err
	}
	return dg.Digest(), nil
}

// schema1Payload returns the signed payload of a prettyjws manifest (signatures stripped, the
// pre-signing bytes restored), or the bytes themselves when there are no signatures.
func schema1Payload(served []byte) ([]byte, error) {
	var sigs struct {
		Signatures []struct {
			Protected string `json:"protected"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(served, &sigs); err != nil {
		return nil, invalidSchema1("%v", err)
	}
	if len(sigs.Signatures) == 0 {
		return served, nil
	}
	pb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(sigs.Signatures[0].Protected, "="))
	if err != nil {
		return nil, invalidSchema1("protected header is not base64url")
	}
	var prot struct {
		FormatLength int    `json:"formatLength"`
		FormatTail   string `json:"formatTail"`
	}
	if err := json.Unmarshal(pb, &prot); err != nil {
		return nil, invalidSchema1("protected header: %v", err)
	}
	if prot.FormatLength <= 0 || prot.FormatLength > len(served) {
		return nil, invalidSchema1("protected header formatLength %d out of range", prot.FormatLength)
	}
	tail, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(prot.FormatTail, "="))
	if err != nil {
		return nil, invalidSchema1("formatTail is not base64url")
	}
	return append(append([]byte(nil), served[:prot.FormatLength]...), tail...), nil
}
