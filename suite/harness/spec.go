package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/gates"
	"github.com/criimage/criimage/registry/journal"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/config"
)

// Spec is the per-spec helper: unique names, CRI calls with timeouts, cleanup, journal access.
// Create it with Env.Begin at the start of a spec body.
type Spec struct {
	Env *Env
	ID  string

	start   int64 // journal sequence at spec start
	n       int
	catalog *fixtures.Set

	mu             sync.Mutex
	cleanup        []string // references to remove at cleanup
	pulledIDs      []string // image_ref of every successful pull
	deferInvariant bool     // DeferOneDescription
}

// Begin starts a spec: it records the journal position and registers cleanup of everything the
// spec pulls.
func (e *Env) Begin(id string) *Spec {
	s := &Spec{Env: e, ID: id, start: e.Reg.Journal().Last()}
	DeferCleanup(func(ctx SpecContext) {
		s.mu.Lock()
		refs := slices.Clone(s.cleanup)
		s.mu.Unlock()
		for _, r := range refs {
			cctx, cancel := context.WithTimeout(ctx, e.Cfg.RPCTimeout)
			_, _ = e.Images.RemoveImage(cctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: r}})
			cancel()
		}
	})
	return s
}

// Repo returns a repository name unique to this run, spec and call, in namespace ns
// ("anon", "basic", "token", …: the namespace chooses the registry's auth variant).
func (s *Spec) Repo(ns string) string {
	s.n++
	return fmt.Sprintf("%s/%s-%s-%d", ns, s.Env.Nonce, strings.ToLower(s.ID), s.n)
}

// Ref is host/repo:tag on the registry's plain listener.
func (s *Spec) Ref(repo, tag string) string { return s.Env.Reg.PlainHost() + "/" + repo + ":" + tag }

// DigestRef is host/repo@digest on the plain listener.
func (s *Spec) DigestRef(repo string, img fixtures.Image) string {
	return s.Env.Reg.PlainHost() + "/" + repo + "@" + img.Digest.String()
}

// Unique returns fresh image content for this spec (a cold pull for the target).
func (s *Spec) Unique(layers, layerSize int) fixtures.Image {
	s.n++
	return fixtures.Unique(fmt.Sprintf("%s/%s/%d", s.Env.Nonce, s.ID, s.n), layers, layerSize)
}

// UniquePair returns two fresh images (distinct IDs) that share every layer blob.
func (s *Spec) UniquePair(layers, layerSize int) (fixtures.Image, fixtures.Image) {
	s.n++
	seed := fmt.Sprintf("%s/%s/%d", s.Env.Nonce, s.ID, s.n)
	return fixtures.Unique(seed, layers, layerSize), fixtures.UniqueVariant(seed, "b", layers, layerSize)
}

// Push pushes img to a new unique repository in ns under tag and returns the repository.
func (s *Spec) Push(img fixtures.Image, ns, tag string) string {
	GinkgoHelper()
	repo := s.Repo(ns)
	Expect(img.Push(s.Env.Reg, repo, tag)).To(Succeed(), "seed %s:%s", repo, tag)
	return repo
}

// PushUnique pushes fresh small content to a unique anonymous repository and returns the image
// and its tag reference.
func (s *Spec) PushUnique(tag string) (fixtures.Image, string) {
	img := s.Unique(2, 512)
	repo := s.Push(img, "anon", tag)
	return img, s.Ref(repo, tag)
}

// Track registers ref for removal at the end of the spec. The empty reference is never
// registered: a runtime that resolves references by ID prefix (containerd's digest set) takes
// RemoveImage("") for the only image in its store, which under ginkgo -p is another process's
// image (2.4.2 parallel census: REF-005's pull of "" had its cleanup remove RM-009's bystander).
// RM-007 sends RemoveImage("") on purpose, serially.
func (s *Spec) Track(ref string) {
	if ref == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanup = append(s.cleanup, ref)
}

// ctx bounds one CRI call.
func (s *Spec) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.Env.Cfg.RPCTimeout)
}

// Pull calls PullImage with auth (may be nil) and returns image_ref.
func (s *Spec) Pull(ctx context.Context, ref string, auth *runtime.AuthConfig) (string, error) {
	return s.PullSpec(ctx, &runtime.ImageSpec{Image: ref}, auth)
}

// PullSpec calls PullImage with a full ImageSpec.
func (s *Spec) PullSpec(ctx context.Context, spec *runtime.ImageSpec, auth *runtime.AuthConfig) (string, error) {
	return s.PullRequest(ctx, &runtime.PullImageRequest{Image: spec, Auth: auth})
}

// PullRequest calls PullImage with a whole request (e.g. with a sandbox_config). After a
// successful pull it checks the one-image invariant for the image (ExpectOneDescription) unless
// the spec deferred it (DeferOneDescription).
func (s *Spec) PullRequest(ctx context.Context, req *runtime.PullImageRequest) (string, error) {
	s.Track(req.GetImage().GetImage())
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.Env.Images.PullImage(cctx, req)
	if err != nil {
		return "", err
	}
	id := resp.GetImageRef()
	if id != "" {
		s.Track(id)
		if s.pulled(id) {
			s.ExpectOneDescription(ctx, id)
		}
	}
	return id, nil
}

// KubeletSandbox is a PodSandboxConfig shaped like the one kubelet sends with every PullImage
// (metadata, hostname, log directory, labels, annotations, Linux security context), unique to
// the spec.
func (s *Spec) KubeletSandbox() *runtime.PodSandboxConfig {
	name := strings.ToLower(s.ID) + "-" + s.Env.Nonce
	return &runtime.PodSandboxConfig{
		Metadata:     &runtime.PodSandboxMetadata{Name: name, Namespace: "criimage", Uid: name + "-uid", Attempt: 0},
		Hostname:     name,
		LogDirectory: "/var/log/pods/criimage_" + name,
		Labels:       map[string]string{"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "criimage"},
		Annotations:  map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &runtime.LinuxPodSandboxConfig{
			CgroupParent:    "/kubepods/besteffort/pod" + name,
			SecurityContext: &runtime.LinuxSandboxSecurityContext{NamespaceOptions: &runtime.NamespaceOption{}},
		},
	}
}

// MustPull pulls anonymously and fails the spec on error, on an empty image_ref (CV-04), or if
// ImageStatus does not then show the image under that image_ref: no spec builds on a pull that
// only claimed success.
func (s *Spec) MustPull(ctx context.Context, ref string) string {
	GinkgoHelper()
	return s.MustPullWith(ctx, ref, nil)
}

// MustPullWith is MustPull with credentials.
func (s *Spec) MustPullWith(ctx context.Context, ref string, auth *runtime.AuthConfig) string {
	GinkgoHelper()
	id, err := s.Pull(ctx, ref, auth)
	Expect(err).NotTo(HaveOccurred(), "PullImage %s", ref)
	Expect(id).NotTo(BeEmpty(), "PullImage %s returned an empty image_ref (CV-04)", ref)
	st, err := s.StatusFull(ctx, ref, false)
	Expect(err).NotTo(HaveOccurred(), "ImageStatus %s after PullImage", ref)
	Expect(st.GetImage()).NotTo(BeNil(), "ImageStatus(%s) right after PullImage returned", ref)
	Expect(st.GetImage().GetId()).To(Equal(id), "ImageStatus(%s).id must be PullImage's image_ref (IS-25)", ref)
	return id
}

// Status returns ImageStatus(ref).Image (nil if absent) and fails the spec on an error.
func (s *Spec) Status(ctx context.Context, ref string) *runtime.Image {
	GinkgoHelper()
	resp, err := s.StatusFull(ctx, ref, false)
	Expect(err).NotTo(HaveOccurred(), "ImageStatus %q", ref)
	return resp.GetImage()
}

// StatusFull calls ImageStatus.
func (s *Spec) StatusFull(ctx context.Context, ref string, verbose bool) (*runtime.ImageStatusResponse, error) {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.Env.Images.ImageStatus(cctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}, Verbose: verbose})
}

// List returns ListImages with an empty filter.
func (s *Spec) List(ctx context.Context) []*runtime.Image {
	GinkgoHelper()
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.Env.Images.ListImages(cctx, &runtime.ListImagesRequest{})
	Expect(err).NotTo(HaveOccurred(), "ListImages")
	return resp.GetImages()
}

// Remove calls RemoveImage(ref).
func (s *Spec) Remove(ctx context.Context, ref string) error {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.Env.Images.RemoveImage(cctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	return err
}

// FsInfo calls ImageFsInfo.
func (s *Spec) FsInfo(ctx context.Context) *runtime.ImageFsInfoResponse {
	GinkgoHelper()
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.Env.Images.ImageFsInfo(cctx, &runtime.ImageFsInfoRequest{})
	Expect(err).NotTo(HaveOccurred(), "ImageFsInfo")
	return resp
}

// Find returns the listed image that carries ref as a tag, digest or ID.
func Find(images []*runtime.Image, ref string) *runtime.Image {
	for _, img := range images {
		if img.GetId() == ref || slices.Contains(img.GetRepoTags(), ref) || slices.Contains(img.GetRepoDigests(), ref) {
			return img
		}
	}
	return nil
}

// ExpectAbsent asserts that no ref resolves: ImageStatus returns nil (IS-06) and no listed image
// carries it.
func (s *Spec) ExpectAbsent(ctx context.Context, refs ...string) {
	GinkgoHelper()
	list := s.List(ctx)
	for _, r := range refs {
		if r == "" {
			continue
		}
		Expect(s.Status(ctx, r)).To(BeNil(), "ImageStatus(%s) after it should be gone", r)
		Expect(Find(list, r)).To(BeNil(), "ListImages still shows %s", r)
	}
}

// ExpectPullError asserts a failed pull with a non-OK gRPC status and a message.
func ExpectPullError(err error, what string) *status.Status {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "PullImage should fail: %s", what)
	st, ok := status.FromError(err)
	Expect(ok).To(BeTrue(), "PullImage error is not a gRPC status: %v", err)
	Expect(st.Code()).NotTo(Equal(codes.OK))
	Expect(st.Message()).NotTo(BeEmpty(), "PullImage error without a message")
	return st
}

// Journal returns the registry requests made since the spec began.
func (s *Spec) Journal() []journal.Entry { return s.Env.Reg.Journal().Since(s.start) }

// ExpectFetchedFrom asserts that the target asked the registry for repo's manifest during this
// spec (a pull that reports success without contacting the registry checks nothing).
// It fails through Gomega, not ginkgo's Fail, so that a listed expected failure intercepts it.
func (s *Spec) ExpectFetchedFrom(repo string) {
	GinkgoHelper()
	fetched := false
	for _, e := range s.Journal() {
		if e.Repo == repo && e.Kind == route.KindManifest {
			fetched = true
		}
	}
	Expect(fetched).To(BeTrue(), "the target never requested a manifest of %s from the fixture registry", repo)
}

// SawSecret reports whether a request of this spec on listener carried secret (a password,
// token or auth string; the journal keeps only keyed fingerprints).
func (s *Spec) SawSecret(listener route.Listener, secret string) bool {
	return s.SawSecretSince(s.start, listener, secret)
}

// SawSecretSince is SawSecret over the requests after journal sequence seq (Journal().Last()
// taken by the spec), for a spec that tries several credentials in turn.
func (s *Spec) SawSecretSince(seq int64, listener route.Listener, secret string) bool {
	fp := s.Env.Reg.Journal().Fingerprint(secret)
	for _, e := range s.Env.Reg.Journal().Since(seq) {
		if e.Listener == listener && slices.Contains(e.Secrets, fp) {
			return true
		}
	}
	return false
}

// Observe records what the target did, for the report (an "observed" entry): informational
// specs judge nothing else, and others add what a reader of a failure or a pass needs to know.
func Observe(format string, args ...any) {
	AddReportEntry("observed", fmt.Sprintf(format, args...))
}

// PullResult is the outcome of an asynchronous pull.
type PullResult struct {
	ImageRef string
	Err      error
}

// PullAsync starts PullImage in a goroutine with ctx (not bounded by the RPC timeout, so that a
// spec may hold it at a gate) and delivers the result on the returned channel.
func (s *Spec) PullAsync(ctx context.Context, ref string, auth *runtime.AuthConfig) <-chan PullResult {
	s.Track(ref)
	ch := make(chan PullResult, 1)
	go func() {
		defer GinkgoRecover()
		resp, err := s.Env.Images.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}, Auth: auth})
		if resp.GetImageRef() != "" {
			s.Track(resp.GetImageRef())
			s.pulled(resp.GetImageRef()) // checked at the end of the body: the spec races it
		}
		ch <- PullResult{ImageRef: resp.GetImageRef(), Err: err}
	}()
	return ch
}

// Gate holds the first request m selects until the spec releases it. The gate is released and
// disarmed at cleanup in any case, so a failed spec never leaves a request hanging.
func (s *Spec) Gate(m route.Match) *gates.Gate {
	g := s.Env.Reg.Gates().Arm(m)
	DeferCleanup(func() { g.Release(); s.Env.Reg.Gates().Disarm(g) })
	return g
}

// PullHeld starts a pull of ref (PullAsync) whose GET of blob d in repo the registry holds, and
// returns once the request is held: the pull is then surely in flight. what names the blob for a
// failure message. Release the gate to let the pull go on.
func (s *Spec) PullHeld(ctx context.Context, ref string, auth *runtime.AuthConfig, repo string, d digest.Digest, what string) (*gates.Gate, <-chan PullResult) {
	GinkgoHelper()
	g := s.GateBlob(repo, d)
	res := s.PullAsync(ctx, ref, auth)
	s.WaitHeld(ctx, g, what)
	return g, res
}

// GateBlob holds the first GET of blob d in repo (Gate).
func (s *Spec) GateBlob(repo string, d digest.Digest) *gates.Gate {
	return s.Gate(route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: d})
}

// Arm arms a fault rule for the spec; it is cleared at cleanup.
func (s *Spec) Arm(r faults.Rule) string {
	id := s.Env.Reg.Faults().Arm(r)
	DeferCleanup(func() { s.Env.Reg.Faults().Clear(id) })
	return id
}

// ExpectClientGone asserts, within CancelBound, that the registry saw the client of the request
// held by g (a GET of blob d in repo) go away: the gate reports it, or the journal records the
// request as aborted. Call it right after the client cancelled.
func (s *Spec) ExpectClientGone(g *gates.Gate, repo string, d digest.Digest, why string) {
	GinkgoHelper()
	bound := s.CancelBound()
	Eventually(func() bool {
		select {
		case <-g.ClientGone():
			return true
		default:
		}
		for _, e := range s.Journal() {
			if e.Repo == repo && e.Digest == d && e.Kind == route.KindBlob && e.Aborted {
				return true
			}
		}
		return false
	}).WithTimeout(bound).WithPolling(20*time.Millisecond).Should(BeTrue(), "%s (the held request was still open %s after the client went away)", why, bound)
}

// CancelBound is how long a target may take to pass its client's cancel on to the registry: the
// RPC timeout, or half the declared progress timeout if that is shorter. A held request makes no
// progress, so a target that ignored the cancel would still drop the request once its progress
// timeout fired; waiting that long would credit the progress timeout to the cancel.
func (s *Spec) CancelBound() time.Duration {
	bound := s.Env.Cfg.RPCTimeout
	if d, ok, err := s.Env.Cfg.Features.Duration(config.FeatureProgressTimeout); ok && err == nil && d > 0 && d/2 < bound {
		bound = d / 2
	}
	return bound
}

// EventuallyBlobGets waits (briefly: the journal records a request when its handler returns,
// a moment after the client has the last byte) until blob d of repo was fetched at least once,
// and returns the count.
func (s *Spec) EventuallyBlobGets(repo string, d digest.Digest) int {
	GinkgoHelper()
	n := 0
	Eventually(func() int {
		n = s.Env.Reg.Journal().BlobGets(repo, d)
		return n
	}).WithTimeout(5*time.Second).WithPolling(10*time.Millisecond).Should(BeNumerically(">=", 1), "blob %s of %s was never fetched", d, repo)
	return n
}

// WaitHeld waits (bounded by the RPC timeout) until g holds a request.
func (s *Spec) WaitHeld(ctx context.Context, g *gates.Gate, what string) {
	GinkgoHelper()
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	Expect(g.Wait(cctx)).To(Succeed(), "the target never requested %s", what)
}
