package mutants

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/internal/criendpoint"
)

// maxMsg is kubelet's cri-client message limit.
const maxMsg = 16 << 20

// gracePeriod is how long Close lets in-flight RPCs finish before cancelling them.
const gracePeriod = 2 * time.Second

// Proxy forwards runtime.v1 ImageService (and RuntimeService Version/Status) to an upstream
// endpoint and injects one mutant's fault. State some mutants need (the newest image, failed
// references, the first ImageFsInfo answer) lives here.
type Proxy struct {
	runtime.UnimplementedImageServiceServer

	mutant   string
	conn     *grpc.ClientConn
	images   runtime.ImageServiceClient
	runtime  runtime.RuntimeServiceClient
	srv      *grpc.Server
	dir      string
	endpoint string
	served   chan error

	mu      sync.Mutex
	newest  string                    // image_ref of the last successful pull (ListOmitNewest)
	ghosts  map[string]*runtime.Image // reference → fabricated image (FailedPullVisible)
	fsFirst *uint64                   // first used_bytes seen (FsUsedConstant)
	pulling map[string]int            // references being pulled (PullConcurrentFails)

	pullTurn chan struct{} // a token per pull in progress, capacity 1 (PullsSerialized)
	wedged   bool          // a client abandoned a stream (StreamCancelWedges)
}

// Start serves a proxy for mutant (None for the identity) on a unix socket in a new temp dir,
// forwarding to upstream ("unix:///path" or "tcp://127.0.0.1:port").
func Start(ctx context.Context, upstream, mutant string) (*Proxy, error) {
	if _, err := Lookup(mutant); err != nil {
		return nil, err
	}
	conn, err := criendpoint.Dial(upstream)
	if err != nil {
		return nil, fmt.Errorf("mutants: upstream: %w", err)
	}
	dir, err := os.MkdirTemp("", "criimage-mut-") // short: unix socket paths are limited
	if err != nil {
		conn.Close()
		return nil, err
	}
	lis, ep, err := criendpoint.Listen(ctx, criendpoint.Endpoint{Network: "unix", Address: filepath.Join(dir, "cri.sock")})
	if err != nil {
		conn.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mutants: listen: %w", err)
	}
	p := &Proxy{
		mutant:   mutant,
		conn:     conn,
		images:   runtime.NewImageServiceClient(conn),
		runtime:  runtime.NewRuntimeServiceClient(conn),
		srv:      grpc.NewServer(grpc.WaitForHandlers(true)),
		dir:      dir,
		endpoint: ep.String(),
		served:   make(chan error, 1),
		ghosts:   map[string]*runtime.Image{},
		pulling:  map[string]int{},
		pullTurn: make(chan struct{}, 1),
	}
	runtime.RegisterImageServiceServer(p.srv, p)
	runtime.RegisterRuntimeServiceServer(p.srv, &runtimeProxy{up: p.runtime})
	go func() { p.served <- p.srv.Serve(lis) }()
	return p, nil
}

// Endpoint is the proxy's "unix:///…" address.
func (p *Proxy) Endpoint() string { return p.endpoint }

// Mutant is the name of the injected fault.
func (p *Proxy) Mutant() string { return p.mutant }

// Close stops serving (in-flight RPCs get a grace period, then are cancelled), closes the
// upstream connection and removes the socket directory.
func (p *Proxy) Close() error {
	var errs []error
	if err := criendpoint.Stop(p.srv, p.served, gracePeriod); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, p.conn.Close(), os.RemoveAll(p.dir))
	return errors.Join(errs...)
}

// runtimeProxy forwards the RuntimeService calls clients probe at connect time.
type runtimeProxy struct {
	runtime.UnimplementedRuntimeServiceServer
	up runtime.RuntimeServiceClient
}

func (r *runtimeProxy) Version(ctx context.Context, req *runtime.VersionRequest) (*runtime.VersionResponse, error) {
	return r.up.Version(ctx, req)
}

func (r *runtimeProxy) Status(ctx context.Context, req *runtime.StatusRequest) (*runtime.StatusResponse, error) {
	return r.up.Status(ctx, req)
}

// is reports whether the proxy injects mutant m.
func (p *Proxy) is(m ...string) bool { return slices.Contains(m, p.mutant) }

// mutateImage applies the per-image field mutants to img (a copy the proxy owns).
func (p *Proxy) mutateImage(img *runtime.Image) *runtime.Image {
	if img == nil {
		return nil
	}
	switch p.mutant {
	case SizeZero:
		img.Size = 0
	case TagsMissing:
		img.RepoTags = nil
	case DigestsMissing:
		img.RepoDigests = nil
	case PinnedIgnored:
		img.Pinned = false
	case PinnedAll:
		img.Pinned = true
	case DigestPullTagged:
		if len(img.RepoTags) == 0 {
			for _, d := range img.RepoDigests {
				if name, _, ok := strings.Cut(d, "@"); ok {
					img.RepoTags = append(img.RepoTags, name+":latest")
					break
				}
			}
		}
	case UIDAndUsername:
		switch {
		case img.Uid != nil && img.Username == "":
			img.Username = fmt.Sprint(img.Uid.Value)
		case img.Uid == nil && img.Username != "":
			img.Uid = &runtime.Int64Value{Value: 0}
		}
	}
	return img
}

// listing applies the list-level mutants to what ListImages/StreamImages return.
func (p *Proxy) listing(imgs []*runtime.Image, filter *runtime.ImageFilter) []*runtime.Image {
	for _, img := range imgs {
		p.mutateImage(img)
		if p.is(ListSizeDiffers) {
			img.Size++
		}
	}
	switch p.mutant {
	case ListOmitNewest:
		p.mu.Lock()
		newest := p.newest
		p.mu.Unlock()
		imgs = slices.DeleteFunc(imgs, func(img *runtime.Image) bool { return img.GetId() == newest })
	case FailedPullVisible:
		key := filter.GetImage().GetImage()
		p.mu.Lock()
		for ref, g := range p.ghosts {
			if key == "" || key == ref {
				imgs = append(imgs, proto.Clone(g).(*runtime.Image))
			}
		}
		p.mu.Unlock()
	}
	return imgs
}

// PullImage forwards the pull with the request or the context mutated as the mutant says.
func (p *Proxy) PullImage(ctx context.Context, req *runtime.PullImageRequest) (*runtime.PullImageResponse, error) {
	req = proto.Clone(req).(*runtime.PullImageRequest)
	upCtx := ctx
	switch p.mutant {
	case AuthDropAll:
		req.Auth = nil
	case AuthDropRegistryToken:
		if req.Auth != nil {
			req.Auth.RegistryToken = ""
		}
	case RuntimeHandlerIgnored:
		if req.Image != nil {
			req.Image.RuntimeHandler = ""
		}
	case PullDetached:
		upCtx = context.WithoutCancel(ctx)
	case AuthServerAddrDropped:
		if req.Auth != nil {
			req.Auth.ServerAddress = ""
		}
	case AuthDockerAliases:
		if req.Auth != nil && dockerHubAddress.MatchString(req.Auth.ServerAddress) {
			req.Auth.ServerAddress = "https://docker-hub-alias.invalid"
		}
	case RefDigestDropped:
		if req.Image != nil {
			if name, _, ok := strings.Cut(req.Image.Image, "@"); ok && strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
				req.Image.Image = name
			}
		}
	case PullConcurrentFails:
		ref := req.GetImage().GetImage()
		p.mu.Lock()
		busy := p.pulling[ref] > 0
		if !busy {
			p.pulling[ref]++
		}
		p.mu.Unlock()
		if busy {
			return nil, status.Errorf(codes.AlreadyExists, "a pull of %q is already in progress", ref)
		}
		defer func() {
			p.mu.Lock()
			p.pulling[ref]--
			p.mu.Unlock()
		}()
	}
	if p.is(RefHostLowercased) && req.Image != nil {
		if host, rest, ok := strings.Cut(req.Image.Image, "/"); ok && strings.ContainsAny(host, ".:") {
			req.Image.Image = strings.ToLower(host) + "/" + rest
		}
	}
	if p.is(PullIDAsDockerRef) && req.Image != nil && idForm.MatchString(req.Image.Image) {
		req.Image.Image = "docker.io/library/" + req.Image.Image
	}
	var before string // TagMoveDropsOld: the image the reference named before the pull
	if p.is(TagMoveDropsOld) {
		if st, err := p.images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: req.GetImage()}); err == nil {
			before = st.GetImage().GetId()
		}
	}
	if p.is(PullsSerialized) {
		select {
		case p.pullTurn <- struct{}{}:
			defer func() { <-p.pullTurn }()
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if p.is(RepullRemovesFirst) {
		st, err := p.images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: req.GetImage()})
		if err == nil && st.GetImage() != nil {
			if _, err := p.images.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: st.GetImage().GetId()}}); err != nil {
				return nil, err
			}
		}
	}
	if p.is(PullCachedTag) {
		st, err := p.images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: req.GetImage()})
		if err == nil && st.GetImage() != nil && slices.Contains(st.GetImage().GetRepoTags(), req.GetImage().GetImage()) {
			return &runtime.PullImageResponse{ImageRef: st.GetImage().GetId()}, nil
		}
	}
	resp, err := p.images.PullImage(upCtx, req)
	for p.is(PullRetries429) && err != nil && strings.Contains(status.Convert(err).Message(), "429") {
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(time.Second):
		}
		resp, err = p.images.PullImage(upCtx, req)
	}
	if err != nil {
		return nil, p.pullFailed(req, err)
	}
	p.mu.Lock()
	p.newest = resp.GetImageRef()
	delete(p.ghosts, req.GetImage().GetImage())
	p.mu.Unlock()
	if before != "" && before != resp.GetImageRef() {
		if _, err := p.images.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: before}}); err != nil {
			return nil, err
		}
	}
	switch p.mutant {
	case RefNoSHA256Prefix:
		resp.ImageRef = strings.TrimPrefix(resp.ImageRef, "sha256:")
	case RefManifestDigest:
		st, serr := p.images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: resp.GetImageRef()}})
		if serr != nil {
			return nil, serr
		}
		for _, rd := range st.GetImage().GetRepoDigests() {
			if _, d, ok := strings.Cut(rd, "@"); ok {
				resp.ImageRef = d
				break
			}
		}
	}
	return resp, nil
}

// pullFailed applies the mutants that act on a failed pull.
func (p *Proxy) pullFailed(req *runtime.PullImageRequest, err error) error {
	switch p.mutant {
	case LeakPasswordInError:
		a := req.GetAuth()
		var secrets []string
		for _, s := range []string{a.GetPassword(), a.GetAuth(), a.GetIdentityToken(), a.GetRegistryToken()} {
			if s != "" {
				secrets = append(secrets, s)
			}
		}
		if len(secrets) > 0 {
			st := status.Convert(err)
			return status.Errorf(st.Code(), "%s (credentials used: %s)", st.Message(), strings.Join(secrets, " "))
		}
	case PullErrorCodeUnknown:
		return status.Error(codes.Unknown, status.Convert(err).Message())
	case PullAuthAsNotFound:
		if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
			return status.Error(codes.NotFound, status.Convert(err).Message())
		}
	case FailedPullVisible:
		ref := req.GetImage().GetImage()
		if ref != "" {
			sum := sha256.Sum256([]byte(ref))
			p.mu.Lock()
			p.ghosts[ref] = &runtime.Image{Id: "sha256:" + hex.EncodeToString(sum[:]), RepoTags: []string{ref}, Size: 1}
			p.mu.Unlock()
		}
	}
	return err
}

// dockerHubAddress matches the server_address forms that name Docker Hub.
var dockerHubAddress = regexp.MustCompile(`^(https?://)?(index\.docker\.io|registry-1\.docker\.io|docker\.io)(/.*)?$`)

// idForm matches a whole image ID with its algorithm.
var idForm = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// hexPrefix matches a truncated image ID.
var hexPrefix = regexp.MustCompile(`^[0-9a-f]{4,63}$`)

// ImageStatus forwards the lookup with the status mutants applied.
func (p *Proxy) ImageStatus(ctx context.Context, req *runtime.ImageStatusRequest) (*runtime.ImageStatusResponse, error) {
	req = proto.Clone(req).(*runtime.ImageStatusRequest)
	key := req.GetImage().GetImage()
	switch p.mutant {
	case RuntimeHandlerIgnored:
		if req.Image != nil {
			req.Image.RuntimeHandler = ""
		}
	case StatusInfoNotVerbose:
		if !req.Verbose {
			resp, err := p.images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: req.Image, Verbose: true})
			if err != nil {
				return nil, err
			}
			p.mutateImage(resp.Image)
			return resp, nil
		}
	case StatusEmptyMatches:
		if key == "" {
			list, err := p.images.ListImages(ctx, &runtime.ListImagesRequest{})
			if err != nil || len(list.GetImages()) == 0 {
				return &runtime.ImageStatusResponse{}, err
			}
			return &runtime.ImageStatusResponse{Image: list.GetImages()[0]}, nil
		}
	case StatusPrefixWrongImage:
		if hexPrefix.MatchString(key) {
			list, err := p.images.ListImages(ctx, &runtime.ListImagesRequest{})
			if err != nil {
				return nil, err
			}
			for _, img := range list.GetImages() {
				if !strings.HasPrefix(strings.TrimPrefix(img.GetId(), "sha256:"), key) {
					return &runtime.ImageStatusResponse{Image: img}, nil
				}
			}
		}
	case FailedPullVisible:
		p.mu.Lock()
		g, ok := p.ghosts[key]
		p.mu.Unlock()
		if ok {
			return &runtime.ImageStatusResponse{Image: proto.Clone(g).(*runtime.Image)}, nil
		}
	}
	resp, err := p.images.ImageStatus(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.GetImage() == nil {
		switch p.mutant {
		case StatusAbsentNotFound:
			return nil, status.Errorf(codes.NotFound, "image %q not found", key)
		case StatusTagCaseFold:
			if img, err := p.caseFold(ctx, key); err != nil || img != nil {
				return &runtime.ImageStatusResponse{Image: img}, err
			}
		}
		return resp, nil
	}
	p.mutateImage(resp.Image)
	if p.is(StatusTruncatedNoTags) && hexPrefix.MatchString(key) {
		resp.Image.RepoTags = nil
	}
	if p.mutant == StatusInfoInvalidJSON {
		for k, v := range resp.Info {
			resp.Info[k] = v[:len(v)/2]
		}
	}
	return resp, nil
}

// isWedged reports whether a client abandoned a stream (StreamCancelWedges).
func (p *Proxy) isWedged() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wedged
}

// caseFold finds an image with a tag equal to key ignoring case.
func (p *Proxy) caseFold(ctx context.Context, key string) (*runtime.Image, error) {
	list, err := p.images.ListImages(ctx, &runtime.ListImagesRequest{})
	if err != nil {
		return nil, err
	}
	for _, img := range list.GetImages() {
		for _, t := range img.GetRepoTags() {
			if strings.EqualFold(t, key) {
				return img, nil
			}
		}
	}
	return nil, nil
}

// ListImages forwards the listing with the list mutants applied.
func (p *Proxy) ListImages(ctx context.Context, req *runtime.ListImagesRequest) (*runtime.ListImagesResponse, error) {
	if p.is(ListFilterIgnored) {
		req = &runtime.ListImagesRequest{}
	}
	if p.isWedged() {
		return nil, status.Error(codes.Unavailable, "image listing busy: a previous stream is still open")
	}
	resp, err := p.images.ListImages(ctx, req)
	if err != nil {
		return nil, err
	}
	imgs := p.listing(resp.GetImages(), req.GetFilter())
	switch p.mutant {
	case ListEmpty:
		imgs = nil
	case ListDuplicate:
		for _, img := range slices.Clone(imgs) {
			imgs = append(imgs, proto.Clone(img).(*runtime.Image))
		}
	}
	return &runtime.ListImagesResponse{Images: imgs}, nil
}

// StreamImages relays upstream batches with the stream mutants applied.
func (p *Proxy) StreamImages(req *runtime.StreamImagesRequest, stream runtime.ImageService_StreamImagesServer) error {
	ctx := stream.Context()
	if p.is(ListFilterIgnored) {
		req = &runtime.StreamImagesRequest{}
	}
	if p.isWedged() {
		return status.Error(codes.Unavailable, "image listing busy: a previous stream is still open")
	}
	up, err := p.images.StreamImages(ctx, req)
	if err != nil {
		return err
	}
	if p.is(StreamEmptyBatch) {
		if err := stream.Send(&runtime.StreamImagesResponse{}); err != nil {
			return err
		}
	}
	var first *runtime.Image
	paused := false // StreamCancelWedges: after the first message only
	for {
		msg, err := up.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		imgs := p.listing(msg.GetImages(), req.GetFilter())
		if first == nil && len(imgs) > 0 {
			first = proto.Clone(imgs[0]).(*runtime.Image)
		}
		if err := stream.Send(&runtime.StreamImagesResponse{Images: imgs}); err != nil {
			return err
		}
		if p.is(StreamCancelWedges) && !paused && first != nil {
			paused = true
			// Give the client time to walk away after the first message (a real server
			// would be slow here for a large store); if it does, the listing stays wedged.
			select {
			case <-ctx.Done():
				p.mu.Lock()
				p.wedged = true
				p.mu.Unlock()
				return status.FromContextError(ctx.Err()).Err()
			case <-time.After(time.Second):
			}
		}
	}
	if p.is(StreamEmptyMessage) && first == nil {
		if err := stream.Send(&runtime.StreamImagesResponse{}); err != nil {
			return err
		}
	}
	switch p.mutant {
	case StreamDuplicate:
		if first != nil {
			if err := stream.Send(&runtime.StreamImagesResponse{Images: []*runtime.Image{first}}); err != nil {
				return err
			}
		}
	case StreamNoEOF:
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	return nil
}

// RemoveImage forwards the removal, or does what the remove mutants do instead.
func (p *Proxy) RemoveImage(ctx context.Context, req *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	key := req.GetImage().GetImage()
	p.mu.Lock()
	_, ghost := p.ghosts[key]
	delete(p.ghosts, key)
	p.mu.Unlock()
	if ghost {
		return &runtime.RemoveImageResponse{}, nil
	}
	switch p.mutant {
	case RemoveNoop:
		return &runtime.RemoveImageResponse{}, nil
	case RemoveTruncatedNoop:
		if hexPrefix.MatchString(key) {
			return &runtime.RemoveImageResponse{}, nil
		}
	case RemoveAbsentNotFound:
		st, err := p.images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: req.GetImage()})
		if err != nil {
			return nil, err
		}
		if st.GetImage() == nil {
			return nil, status.Errorf(codes.NotFound, "image %q not found", key)
		}
	case RemoveUntag:
		return p.untag(ctx, req)
	}
	return p.images.RemoveImage(ctx, req)
}

// untag removes only the named tag: the upstream removes whole images, so the proxy removes the
// image and pulls its other tags again (anonymously, from where they came).
func (p *Proxy) untag(ctx context.Context, req *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	key := req.GetImage().GetImage()
	st, err := p.images.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: req.GetImage()})
	if err != nil {
		return nil, err
	}
	img := st.GetImage()
	if img == nil || !slices.Contains(img.GetRepoTags(), key) {
		return p.images.RemoveImage(ctx, req)
	}
	if _, err := p.images.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: img.GetId()}}); err != nil {
		return nil, err
	}
	for _, t := range img.GetRepoTags() {
		if t == key {
			continue
		}
		if _, err := p.images.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: t}}); err != nil {
			return nil, status.Errorf(codes.Internal, "untag %q: restore %q: %v", key, t, status.Convert(err).Message())
		}
	}
	return &runtime.RemoveImageResponse{}, nil
}

// ImageFsInfo forwards the usage with the filesystem mutants applied.
func (p *Proxy) ImageFsInfo(ctx context.Context, req *runtime.ImageFsInfoRequest) (*runtime.ImageFsInfoResponse, error) {
	resp, err := p.images.ImageFsInfo(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, fs := range append(slices.Clone(resp.ImageFilesystems), resp.ContainerFilesystems...) {
		switch p.mutant {
		case FsTimestampZero:
			fs.Timestamp = 0
		case FsNoMountpoint:
			fs.FsId = nil
		case FsUsedConstant:
			p.mu.Lock()
			if p.fsFirst == nil {
				v := fs.GetUsedBytes().GetValue()
				p.fsFirst = &v
			}
			fs.UsedBytes = &runtime.UInt64Value{Value: *p.fsFirst}
			p.mu.Unlock()
		}
	}
	return resp, nil
}
