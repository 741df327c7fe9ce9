package service_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/impl/backend"
	"github.com/criimage/criimage/impl/service"
	"github.com/criimage/criimage/internal/criendpoint"
)

func TestPullStatusListRemove(t *testing.T) {
	img := testImage(t, 1, "1000:1000")
	e := newEnv(t, envOpts{images: map[string]v1.Image{
		"busybox": img, "quay.io/other/bb:v1": img, "127.0.0.1:5000/anon/x:1": testImage(t, 2, ""),
	}})
	id, md := configID(t, img), manifestDigest(t, img)
	bytes0, inodes0 := e.fsUsed(t)

	ref := e.pull(t, "busybox")
	if ref != id {
		t.Fatalf("image_ref = %s, want the ID %s", ref, id)
	}
	if got := e.pull(t, "quay.io/other/bb:v1"); got != id {
		t.Fatalf("second repo image_ref = %s", got)
	}
	e.pull(t, "127.0.0.1:5000/anon/x:1")
	bytes1, inodes1 := e.fsUsed(t)
	if bytes1 <= bytes0 || inodes1 <= inodes0 {
		t.Fatalf("ImageFsInfo did not rise after pulls: %d/%d → %d/%d", bytes0, inodes0, bytes1, inodes1)
	}

	for _, key := range []string{
		id, strings.TrimPrefix(id, "sha256:"), id[:7+12], id[7 : 7+4], "busybox", "docker.io/library/busybox:latest",
		"docker.io/library/busybox@" + md, "busybox:whatever@" + md, "quay.io/other/bb:v1", "quay.io/other/bb@" + md,
	} {
		got := e.status(t, key)
		if got == nil || got.Id != id {
			t.Fatalf("ImageStatus(%q) = %v, want %s", key, got, id)
		}
	}
	st := e.status(t, "busybox")
	wantTags := []string{"docker.io/library/busybox:latest", "quay.io/other/bb:v1"}
	wantDigests := []string{"docker.io/library/busybox@" + md, "quay.io/other/bb@" + md}
	if !slices.Equal(st.RepoTags, wantTags) || !slices.Equal(st.RepoDigests, wantDigests) {
		t.Fatalf("tags %v digests %v; want %v %v", st.RepoTags, st.RepoDigests, wantTags, wantDigests)
	}
	if st.Size == 0 || st.Uid.GetValue() != 1000 || st.Uid == nil || st.Username != "" || st.Pinned {
		t.Fatalf("status = %v", st)
	}
	for _, key := range []string{"nothere", "busybox:1", "sha256:" + strings.Repeat("0", 64), "BUSYBOX", "abc"} {
		if got := e.status(t, key); got != nil {
			t.Fatalf("ImageStatus(%q) = %v, want nil", key, got)
		}
	}
	if n := len(e.list(t)); n != 2 {
		t.Fatalf("ListImages: %d images, want 2", n)
	}

	// One tag removes the whole image: every tag and digest in every repository, and the ID.
	e.remove(t, "quay.io/other/bb:v1")
	for _, key := range []string{id, "busybox", "docker.io/library/busybox@" + md, "quay.io/other/bb@" + md} {
		if got := e.status(t, key); got != nil {
			t.Fatalf("after remove, ImageStatus(%q) = %v", key, got)
		}
	}
	if n := len(e.list(t)); n != 1 {
		t.Fatalf("ListImages after remove: %d, want 1", n)
	}
	e.remove(t, "quay.io/other/bb:v1") // idempotent
	e.remove(t, "never/pulled:x")
	bytes2, inodes2 := e.fsUsed(t)
	if bytes2 >= bytes1 || inodes2 >= inodes1 {
		t.Fatalf("ImageFsInfo did not fall after remove: %d/%d → %d/%d", bytes1, inodes1, bytes2, inodes2)
	}
	e.noLeaks(t)
	e.remove(t, "127.0.0.1:5000/anon/x:1")
	e.noLeaks(t)
	if n := len(e.list(t)); n != 0 {
		t.Fatalf("ListImages: %d, want 0", n)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, envOpts{
		images: map[string]v1.Image{"busybox": testImage(t, 1, "")},
		cfg:    service.Config{RuntimeHandlers: map[string]string{"kata": backend.Native}},
	})
	ctx := context.Background()
	for _, ref := range []string{"", "BusyBox", "quay.io/x/y:", "busybox@sha256:abc", strings.Repeat("a", 64)} {
		_, err := e.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
		if status.Code(err) != codes.InvalidArgument || (ref != "" && !strings.Contains(err.Error(), ref)) {
			t.Errorf("PullImage(%q) = %v, want InvalidArgument naming it", ref, err)
		}
	}
	_, err := e.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "busybox", RuntimeHandler: "gvisor"}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `"gvisor"`) {
		t.Errorf("unknown runtime handler: %v", err)
	}
	if e.local.pulls != 0 {
		t.Fatalf("bad input reached the puller %d times", e.local.pulls)
	}
	_, err = e.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "not/there"}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("pull of an unknown image: %v", err)
	}
	for _, key := range []string{"", "sha256:"} {
		if _, err := e.is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: key}}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ImageStatus(%q) = %v, want InvalidArgument", key, err)
		}
		if _, err := e.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: key}}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("RemoveImage(%q) = %v, want InvalidArgument", key, err)
		}
	}
	if _, err := e.is.RemoveImage(ctx, &runtime.RemoveImageRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("RemoveImage(nil spec) = %v", err)
	}
	e.noLeaks(t)
	// A known handler pulls (into its snapshotter).
	if _, err := e.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "busybox", RuntimeHandler: "kata"}}); err != nil {
		t.Fatalf("known runtime handler: %v", err)
	}
}

func TestUserPinnedVerbose(t *testing.T) {
	users := map[string]string{"": "u/none", "0": "u/zero", "0:1": "u/zeroone", "user:group": "u/usergroup", "name": "u/name", "1000": "u/thousand"}
	imgs := map[string]v1.Image{}
	seed := int64(10)
	for user, ref := range users {
		imgs[ref] = testImage(t, seed, user)
		seed++
	}
	e := newEnv(t, envOpts{images: imgs, cfg: service.Config{Pinned: []string{"u/zero", "docker.io/u/name:latest"}}})
	type want struct {
		uid  *int64
		name string
		pin  bool
	}
	i64 := func(v int64) *int64 { return &v }
	wants := map[string]want{
		"u/none": {nil, "", false}, "u/zero": {i64(0), "", true}, "u/zeroone": {i64(0), "", false},
		"u/usergroup": {nil, "user", false}, "u/name": {nil, "name", true}, "u/thousand": {i64(1000), "", false},
	}
	for ref, w := range wants {
		e.pull(t, ref)
		st := e.status(t, ref)
		if (w.uid == nil) != (st.Uid == nil) || (w.uid != nil && *w.uid != st.Uid.Value) || st.Username != w.name || st.Pinned != w.pin {
			t.Errorf("%s: uid %v username %q pinned %v; want %v %q %v", ref, st.Uid, st.Username, st.Pinned, w.uid, w.name, w.pin)
		}
	}
	// Pinned images are still removed.
	e.remove(t, "u/zero")
	if e.status(t, "u/zero") != nil {
		t.Fatal("pinned image not removed")
	}

	ctx := context.Background()
	resp, err := e.is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "u/name"}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ChainID   string `json:"chainID"`
		ImageSpec struct {
			Config struct{ User string }
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info is not JSON: %v: %q", err, resp.Info["info"])
	}
	if !strings.HasPrefix(info.ChainID, "sha256:") || info.ImageSpec.Config.User != "name" || len(info.ImageSpec.RootFS.DiffIDs) != 2 || len(resp.Info) != 1 {
		t.Fatalf("verbose info = %+v (%d keys)", info, len(resp.Info))
	}
	resp, err = e.is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "u/name"}})
	if err != nil || len(resp.Info) != 0 {
		t.Fatalf("non-verbose info = %v, %v", resp.GetInfo(), err)
	}
}

func TestListFilterAndStream(t *testing.T) {
	imgs := map[string]v1.Image{}
	for i := range 5 {
		imgs["s/img"+string(rune('a'+i))] = testImage(t, int64(100+i), "")
	}
	e := newEnv(t, envOpts{images: imgs, cfg: service.Config{StreamBatchSize: 2}})
	ctx := context.Background()

	// Empty store: zero messages, then EOF.
	if sizes := e.stream(t, nil); len(sizes) != 0 {
		t.Fatalf("empty store streamed %v", sizes)
	}
	ids := map[string]bool{}
	for ref := range imgs {
		ids[e.pull(t, ref)] = true
	}
	sizes := e.stream(t, nil)
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("batch sizes %v, want [2 2 1]", sizes)
	}
	resp, err := e.is.ListImages(ctx, &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: "s/imgc"}}})
	if err != nil || len(resp.Images) != 1 || resp.Images[0].RepoTags[0] != "docker.io/s/imgc:latest" {
		t.Fatalf("filtered list = %v, %v", resp.GetImages(), err)
	}
	if sizes := e.stream(t, &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: resp.Images[0].Id[:11]}}); !slices.Equal(sizes, []int{1}) {
		t.Fatalf("filtered stream %v", sizes)
	}
	resp, err = e.is.ListImages(ctx, &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: "s/nothere"}}})
	if err != nil || len(resp.Images) != 0 {
		t.Fatalf("filter on an absent image = %v, %v", resp.GetImages(), err)
	}
	resp, err = e.is.ListImages(ctx, &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{}}})
	if err != nil || len(resp.Images) != 5 {
		t.Fatalf("empty filter = %d images, %v", len(resp.GetImages()), err)
	}
	for _, img := range resp.Images {
		if !ids[img.Id] {
			t.Fatalf("listed unknown id %s", img.Id)
		}
	}
	// A cancelled client ends the stream.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s, err := e.is.StreamImages(cctx, &runtime.StreamImagesRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled stream: %v", err)
	}
}

// stream returns the sizes of the batches; it fails on an empty batch or a duplicate.
func (e *env) stream(t *testing.T, f *runtime.ImageFilter) []int {
	t.Helper()
	s, err := e.is.StreamImages(context.Background(), &runtime.StreamImagesRequest{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	batches, err := criendpoint.Drain(s)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	seen := map[string]bool{}
	var sizes []int
	for _, b := range batches {
		if len(b) == 0 {
			t.Fatal("empty batch")
		}
		for _, img := range b {
			if seen[img.Id] {
				t.Fatalf("duplicate %s", img.Id)
			}
			seen[img.Id] = true
		}
		sizes = append(sizes, len(b))
	}
	return sizes
}

func TestRuntimeVersionStatus(t *testing.T) {
	e := newEnv(t, envOpts{cfg: service.Config{Version: "v9"}})
	ctx := context.Background()
	v, err := e.rs.Version(ctx, &runtime.VersionRequest{})
	if err != nil || v.Version == "" || v.RuntimeName != "criimage" || v.RuntimeVersion != "v9" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	st, err := e.rs.Status(ctx, &runtime.StatusRequest{})
	if err != nil || len(st.Status.Conditions) != 2 || !st.Status.Conditions[0].Status || !st.Status.Conditions[1].Status {
		t.Fatalf("Status = %v, %v", st, err)
	}
	if _, err := e.rs.ListContainers(ctx, &runtime.ListContainersRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("ListContainers = %v, want Unimplemented", err)
	}
}

// TestRuntimeHandlerSnapshotter: a known handler unpacks into its snapshotter, the default
// into the default one.
func TestRuntimeHandlerSnapshotter(t *testing.T) {
	if _, err := backend.Open(context.Background(), t.TempDir(), backend.Overlayfs); err != nil {
		t.Skipf("overlayfs not available: %v", err)
	}
	e := newEnv(t, envOpts{
		snapshotters: []string{backend.Overlayfs},
		images:       map[string]v1.Image{"a": testImage(t, 1, ""), "b": testImage(t, 2, "")},
		cfg:          service.Config{RuntimeHandlers: map[string]string{"fast": backend.Overlayfs}},
	})
	ctx := context.Background()
	if _, err := e.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "a", RuntimeHandler: "fast"}}); err != nil {
		t.Fatal(err)
	}
	e.pull(t, "b")
	nctx := e.b.Context(ctx)
	for ref, want := range map[string]string{"a": backend.Overlayfs, "b": backend.Native} {
		img, err := e.svc.Index().Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		for _, sn := range []string{backend.Native, backend.Overlayfs} {
			_, err := e.b.Snapshotters[sn].Stat(nctx, img.ChainID.String())
			if (err == nil) != (sn == want) {
				t.Errorf("image %s in %s: Stat err = %v, want it only in %s", ref, sn, err, want)
			}
		}
	}
	if n := len(e.list(t)); n != 2 {
		t.Fatalf("List = %d images", n)
	}
}
