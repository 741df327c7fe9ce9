package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/criimage/criimage/impl/grpcerr"
	"github.com/criimage/criimage/impl/internal/echo"
	"github.com/criimage/criimage/impl/pull"

	"github.com/containerd/containerd/v2/core/metadata/boltutil"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/imagestore"
)

func digestOf(s string) digest.Digest { return digest.Digest(s) }

// grpcError turns an error of the service's own steps into a gRPC status with msg as context:
// statuses pass through, domain errors get their code from impl/grpcerr.
func grpcError(err error, msg string) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(grpcerr.Code(err), "%s: %v", msg, err)
}

func (s *Service) snapshotterFor(handler string) (string, error) {
	if handler == "" {
		return s.defSn, nil
	}
	sn, ok := s.handlers[handler]
	if !ok {
		known := make([]string, 0, len(s.handlers))
		for h := range s.handlers {
			known = append(known, h)
		}
		slices.Sort(known)
		return "", status.Errorf(codes.InvalidArgument, "unknown runtime handler %s (known: %s)", echo.Quote(handler), strings.Join(known, ", "))
	}
	return sn, nil
}

// PullImage normalizes the reference, pulls, then writes the records (repo tag, repo digest, ID)
// in one transaction and updates the index once, under the record lock; only then does it end
// the pull's lease. image_ref is the image ID.
func (s *Service) PullImage(ctx context.Context, req *runtime.PullImageRequest) (*runtime.PullImageResponse, error) {
	spec := req.GetImage()
	if spec == nil {
		return nil, status.Error(codes.InvalidArgument, "PullImage: image spec is missing")
	}
	named, err := imagestore.Normalize(spec.GetImage())
	if err != nil {
		return nil, grpcError(err, "PullImage")
	}
	sn, err := s.snapshotterFor(spec.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := s.puller.Pull(ctx, pull.Request{Ref: named, Auth: req.GetAuth(), Snapshotter: sn})
	if err != nil {
		return nil, grpcerr.Status(err) // the message names the reference already
	}
	defer func() {
		// The lease ends whatever happens; records (if written) now hold the content. A fresh
		// context: the caller may be gone, the lease must still go.
		if err := res.Done(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("ending pull lease", "image", named.String(), "error", err.Error())
		}
	}()
	nctx := s.b.Context(ctx)
	img, err := imagestore.Read(nctx, s.b.Content, res.Target, res.Manifest, s.platform)
	if err != nil {
		return nil, grpcError(err, fmt.Sprintf("read pulled image %q", named.String()))
	}
	if res.Config.Digest != "" && res.Config.Digest.String() != img.ID {
		return nil, status.Errorf(codes.Internal, "pull %q: config %s differs from the manifest's %s", named.String(), res.Config.Digest, img.ID)
	}
	if err := imagestore.Check(nctx, s.storage(), img); err != nil {
		// Content or snapshots deleted out of band during the pull. (A concurrent RemoveImage
		// cannot cause it: content a pull finds already present is added to its lease by the
		// metadata store's writer, and snapshots are held through the config's GC label.)
		return nil, status.Errorf(codes.Aborted, "pulled image %q is incomplete (content or snapshot deleted meanwhile?), pull again: %v", named.String(), err)
	}
	repoDigest, repoTag := imagestore.RepoDigestAndTag(named, res.Target.Digest)
	names := []string{repoDigest, img.ID}
	if repoTag != "" {
		names = append(names, repoTag)
	}
	dropped, err := s.commit(ctx, img, names)
	if err != nil {
		return nil, grpcError(err, fmt.Sprintf("record pulled image %q", named.String()))
	}
	if len(dropped) > 0 {
		if err := s.b.GC(ctx); err != nil {
			s.log.Warn("garbage collection after a moved tag", "error", err.Error())
		}
	}
	s.log.Info("pulled image", "image", named.String(), "id", img.ID, "snapshotter", sn, "duration", time.Since(start).String())
	return &runtime.PullImageResponse{ImageRef: img.ID}, nil
}

// commit records names for img under the record lock: one metadata transaction, then one index
// update. Images that lose their last tag or digest to img are dropped with their ID record.
func (s *Service) commit(ctx context.Context, img imagestore.Image, names []string) (dropped []string, err error) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	rec := recordOf(img.Target, img.Manifest.Digest.String())
	refs := slices.Clone(names)
	have, ok := s.index.Get(img.ID)
	if ok {
		if have.Target.Digest == img.Target.Digest && have.Manifest.Digest == img.Manifest.Digest && s.recorded(names, img.ID, rec) {
			// Every record already says exactly this (another caller of the same pull, or a
			// re-pull of an unchanged image): no transaction, no fsync, index unchanged.
			return nil, nil
		}
		refs = append(refs, have.References...)
	}
	for _, n := range names {
		owner, ok := s.index.Owner(n)
		if !ok || owner == img.ID || slices.Contains(dropped, owner) {
			continue
		}
		other, _ := s.index.Get(owner)
		left := slices.DeleteFunc(slices.Clone(other.References), func(r string) bool {
			return r == owner || slices.Contains(names, r)
		})
		if len(left) == 0 {
			dropped = append(dropped, owner)
		}
	}
	labels := map[string]string{labelManaged: labelManagedValue, imagestore.LabelManifest: img.Manifest.Digest.String()}
	if err := s.writeRecords(ctx, names, img.Target, labels, dropped); err != nil {
		return nil, err
	}
	for _, n := range names {
		s.records[n] = rec
	}
	for _, id := range dropped {
		delete(s.records, id)
	}
	img.References = refs
	s.index.Put(img)
	for _, id := range dropped {
		s.index.Delete(id)
	}
	return dropped, nil
}

// recorded reports whether every one of names is a record of image id holding rec. recMu held.
func (s *Service) recorded(names []string, id string, rec record) bool {
	for _, n := range names {
		if owner, ok := s.index.Owner(n); !ok || owner != id {
			return false
		}
		if have, ok := s.records[n]; !ok || have != rec {
			return false
		}
	}
	return true
}

// RemoveImage removes the whole image any lookup form names: every record (tags and digests in
// every repository, the ID) in one transaction, then a synchronous GC. Unknown names succeed.
func (s *Service) RemoveImage(ctx context.Context, req *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	key := req.GetImage().GetImage()
	if key == "" {
		return nil, status.Error(codes.InvalidArgument, "RemoveImage: empty image name or ID")
	}
	removed, err := s.remove(ctx, key)
	if err != nil {
		return nil, err
	}
	if removed != "" {
		if err := s.b.GC(ctx); err != nil {
			return nil, grpcError(err, "remove "+echo.Quote(key))
		}
		s.log.Info("removed image", "image", echo.Quote(key), "id", removed)
	}
	return &runtime.RemoveImageResponse{}, nil
}

func (s *Service) remove(ctx context.Context, key string) (string, error) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	img, err := s.index.Resolve(key)
	if errdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", grpcError(err, "RemoveImage")
	}
	if err := s.writeRecords(ctx, nil, ocispec.Descriptor{}, nil, img.References); err != nil {
		return "", grpcError(err, "remove "+echo.Quote(key))
	}
	for _, n := range img.References {
		delete(s.records, n)
	}
	s.index.Delete(img.ID)
	return img.ID, nil
}

func (s *Service) storage() imagestore.Storage {
	return imagestore.Storage{Content: s.b.Content, Blobs: s.b.RawContent(), Snapshotters: s.b.Snapshotters}
}

// usable is the cheap check made before an image is reported.
func (s *Service) usable(ctx context.Context, img imagestore.Image) bool {
	if err := imagestore.Check(s.b.Context(ctx), s.storage(), img); err != nil {
		s.log.Debug("not reporting unusable image", "id", img.ID, "reason", err.Error())
		return false
	}
	return true
}

// ImageStatus resolves the name with the index's lookup rules; an absent or unusable image is
// Image=nil without error; "" and ambiguous ID prefixes are InvalidArgument.
func (s *Service) ImageStatus(ctx context.Context, req *runtime.ImageStatusRequest) (*runtime.ImageStatusResponse, error) {
	key := req.GetImage().GetImage()
	img, err := s.index.Resolve(key)
	if errdefs.IsNotFound(err) {
		return &runtime.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, grpcError(err, "ImageStatus")
	}
	if !s.usable(ctx, img) {
		return &runtime.ImageStatusResponse{}, nil
	}
	resp := &runtime.ImageStatusResponse{Image: s.toCRI(img)}
	if req.GetVerbose() {
		info, err := json.Marshal(verboseInfo{ChainID: img.ChainID.String(), ImageSpec: img.Spec})
		if err != nil {
			return nil, grpcError(err, "ImageStatus: verbose info")
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// verboseInfo is ImageStatusResponse.info["info"], the same keys as containerd's.
type verboseInfo struct {
	ChainID   string        `json:"chainID"`
	ImageSpec ocispec.Image `json:"imageSpec"`
}

func (s *Service) toCRI(img imagestore.Image) *runtime.Image {
	out := &runtime.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags(),
		RepoDigests: img.RepoDigests(),
		Size:        img.Size,
		Pinned:      s.isPinned(img),
	}
	uid, name := userOf(img.Spec.Config.User)
	if uid != nil {
		out.Uid = &runtime.Int64Value{Value: *uid}
	}
	out.Username = name
	return out
}

func (s *Service) isPinned(img imagestore.Image) bool {
	for _, r := range img.References {
		if s.pinned[r] {
			return true
		}
	}
	return false
}

// userOf maps config User to CRI's mutually exclusive uid/username, as containerd does:
// the part before ':' counts; numeric → uid, otherwise → username; "" → neither.
func userOf(user string) (*int64, string) {
	if user == "" {
		return nil, ""
	}
	user, _, _ = strings.Cut(user, ":")
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		return &uid, ""
	}
	return nil, user
}

// selected lists the usable images the filter selects (filter.image with the lookup rules of
// ImageStatus; nil or empty = all).
func (s *Service) selected(ctx context.Context, f *runtime.ImageFilter) ([]*runtime.Image, error) {
	var imgs []imagestore.Image
	if key := f.GetImage().GetImage(); key != "" {
		img, err := s.index.Resolve(key)
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, grpcError(err, "image filter")
		}
		imgs = []imagestore.Image{img}
	} else {
		imgs = s.index.List()
	}
	usable, err := s.usableOf(ctx, imgs)
	if err != nil {
		return nil, grpcError(err, "check images")
	}
	out := make([]*runtime.Image, 0, len(usable))
	for _, img := range usable {
		out = append(out, s.toCRI(img))
	}
	return out, nil
}

// lookups returns the metadata answers for the metadata DB as of committed transaction txid:
// those of earlier calls if nothing committed since, else new ones (kept for later calls unless
// a newer state is already kept).
func (s *Service) lookups(txid int) *imagestore.Lookups {
	s.lookupMu.Lock()
	defer s.lookupMu.Unlock()
	switch {
	case s.lookupState != nil && s.lookupTx == txid:
	case txid > s.lookupTx || s.lookupState == nil:
		s.lookupState, s.lookupTx = imagestore.NewLookups(), txid
	default:
		return imagestore.NewLookups() // an older state than the kept one: not shared
	}
	return s.lookupState
}

// scanBlobsFrom is the number of images above which usableOf lists the blob directory once
// instead of stat'ing each blob file (the listing costs about as much as a few dozen stats on
// a store of a few hundred blobs, and grows with the store, not with the images asked about).
const scanBlobsFrom = 32

// usableOf returns the usable ones among imgs, checked as usable checks one image, but in one
// metadata read transaction and with each blob and snapshot looked up once (imagestore.Checker).
// The metadata answers (blob records, snapshot Stats) are reused from earlier calls as long as
// no metadata write transaction committed since (imagestore.Lookups says why that is exact);
// the blob files are checked on every call (one stat each, or one listing of the blob
// directory above scanBlobsFrom images). The transaction is held while the images are checked;
// bbolt writers proceed meanwhile (only a commit that must grow the file's mapping waits).
func (s *Service) usableOf(ctx context.Context, imgs []imagestore.Image) ([]imagestore.Image, error) {
	out := make([]imagestore.Image, 0, len(imgs))
	err := s.b.DB.View(func(tx *bolt.Tx) error {
		tctx := boltutil.WithTransaction(s.b.Context(ctx), tx)
		c := imagestore.NewChecker(s.storage())
		c.UseLookups(s.lookups(tx.ID()))
		if len(imgs) > scanBlobsFrom {
			if err := c.ScanBlobs(backend.BlobDir(s.b.Root, "sha256")); err != nil {
				return err
			}
		}
		for i, img := range imgs {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := c.Check(tctx, img); err != nil {
				s.log.Debug("not reporting unusable image", "id", img.ID, "reason", err.Error())
				continue
			}
			out = append(out, img)
		}
		return nil
	})
	return out, err
}

// ListImages lists every usable image (filter.image honoured).
func (s *Service) ListImages(ctx context.Context, req *runtime.ListImagesRequest) (*runtime.ListImagesResponse, error) {
	imgs, err := s.selected(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtime.ListImagesResponse{Images: imgs}, nil
}

// StreamImages sends what ListImages would return in non-empty batches of at most
// StreamBatchSize, each image once, then ends the stream (EOF). An empty store sends zero
// messages (as containerd). A cancelled client stops it.
func (s *Service) StreamImages(req *runtime.StreamImagesRequest, stream runtime.ImageService_StreamImagesServer) error {
	ctx := stream.Context()
	imgs, err := s.selected(ctx, req.GetFilter())
	if err != nil {
		return err
	}
	for len(imgs) > 0 {
		if err := ctx.Err(); err != nil {
			return grpcError(err, "StreamImages")
		}
		n := min(s.batch, len(imgs))
		if err := stream.Send(&runtime.StreamImagesResponse{Images: imgs[:n]}); err != nil {
			return err
		}
		imgs = imgs[n:]
	}
	return nil
}

// ImageFsInfo reports one image filesystem, the backend root: the bytes and inodes of the
// content store's blobs and partial downloads and of every snapshotter's snapshots, from the
// stores' own accounting (usageMeter) — a call never walks the root
// and never fails because a pull or removal adds or deletes files meanwhile. Removals show at
// once because RemoveImage collects garbage synchronously.
func (s *Service) ImageFsInfo(ctx context.Context, _ *runtime.ImageFsInfoRequest) (*runtime.ImageFsInfoResponse, error) {
	u, err := s.usage.measure(ctx)
	if err != nil {
		return nil, grpcError(err, fmt.Sprintf("image filesystem usage of %s", s.b.Root))
	}
	return &runtime.ImageFsInfoResponse{ImageFilesystems: []*runtime.FilesystemUsage{{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtime.FilesystemIdentifier{Mountpoint: s.b.Root},
		UsedBytes:  &runtime.UInt64Value{Value: uint64(max(u.bytes, 0))},
		InodesUsed: &runtime.UInt64Value{Value: uint64(max(u.inodes, 0))},
	}}}, nil
}
