package service_test

import (
	"context"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestListDuringPullAndRemoveDuringPull holds a pull after its content is in (gate), checks that
// List/Status show nothing of it and that a RemoveImage meanwhile succeeds without harm, then
// lets it finish: the image appears whole, with all its names at once.
func TestListDuringPullAndRemoveDuringPull(t *testing.T) {
	img := testImage(t, 1, "")
	e := newEnv(t, envOpts{images: map[string]v1.Image{"held": img}})
	g := e.local.arm("held")
	done := make(chan error, 1)
	go func() {
		_, err := e.is.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "held"}})
		done <- err
	}()
	<-g.held
	if got := e.list(t); len(got) != 0 {
		t.Fatalf("List during pull = %v", got)
	}
	if got := e.status(t, configID(t, img)); got != nil {
		t.Fatalf("Status during pull = %v", got)
	}
	e.remove(t, "held")
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := e.list(t)
	if len(got) != 1 || len(got[0].RepoTags) != 1 || len(got[0].RepoDigests) != 1 {
		t.Fatalf("List after pull = %v", got)
	}
	e.noLeaks(t)
}

// TestCancelledPullLeavesNothing: the client goes away while the pull is held.
func TestCancelledPullLeavesNothing(t *testing.T) {
	e := newEnv(t, envOpts{images: map[string]v1.Image{"held": testImage(t, 1, "")}})
	g := e.local.arm("held")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "held"}})
		done <- err
	}()
	<-g.held
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled pull: %v", err)
	}
	// The server side may still be unwinding; a second pull (serialized behind nothing) and a
	// remove make the state settle deterministically before the leak check.
	e.pull(t, "held")
	e.remove(t, "held")
	e.noLeaks(t)
}

// TestConcurrentPullRemove loops pulls and removes of two tags of one image and a third image
// concurrently: every call succeeds, and the end state is consistent (List = Status, no orphan
// record, lease, blob or snapshot).
func TestConcurrentPullRemove(t *testing.T) {
	img := testImage(t, 1, "")
	e := newEnv(t, envOpts{images: map[string]v1.Image{"r/one:a": img, "r/one:b": img, "r/two": testImage(t, 2, "")}})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, ref := range []string{"r/one:a", "r/one:b", "r/two"} {
		wg.Go(func() {
			for range 8 {
				if _, err := e.is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
					errs <- err
				}
			}
		})
		wg.Go(func() {
			for range 8 {
				if _, err := e.is.RemoveImage(ctx, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
					errs <- err
				}
				if _, err := e.is.ListImages(ctx, &runtime.ListImagesRequest{}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list := e.list(t)
	for _, img := range list {
		st := e.status(t, img.Id)
		if st == nil || len(st.RepoTags) != len(img.RepoTags) {
			t.Fatalf("Status(%s) = %v, List says %v", img.Id, st, img)
		}
	}
	e.noLeaks(t)
	e.pull(t, "r/one:a")
	if st := e.status(t, "r/one:a"); st == nil {
		t.Fatal("final pull not reported")
	}
}

// TestTagMovesToNewImage: re-pulling a tag that now names another image moves the tag; the old
// image keeps its repo digest (every pull records one), so it stays listed, tag-less, until removed.
func TestTagMovesToNewImage(t *testing.T) {
	old, nu := testImage(t, 1, ""), testImage(t, 2, "")
	e := newEnv(t, envOpts{images: map[string]v1.Image{"app:v1": old}})
	oldID := e.pull(t, "app:v1")
	// Pull by digest as well: the old image keeps a name and must stay.
	e.local.add("app@"+manifestDigest(t, old), old)
	e.local.add("app:v1", nu)
	newID := e.pull(t, "app:v1")
	if newID == oldID {
		t.Fatal("same ID")
	}
	if st := e.status(t, oldID); st == nil || len(st.RepoTags) != 0 || len(st.RepoDigests) != 1 {
		t.Fatalf("old image (still named by digest) = %v", st)
	}
	e.remove(t, oldID)
	// Move the tag back and forth; removal by digest removes the image that digest names.
	e.local.add("app:v1", old)
	e.pull(t, "app:v1")
	e.remove(t, "app@"+manifestDigest(t, nu))
	e.local.add("app:v1", nu)
	e.pull(t, "app:v1")
	e.remove(t, "app@"+manifestDigest(t, nu))
	if got := e.list(t); len(got) != 1 || got[0].Id != oldID {
		t.Fatalf("List = %v", got)
	}
	e.noLeaks(t)
}

// TestRemoveWhilePullingTheSameImage: image X is present (tag a); a pull of X by tag b finds its
// content and snapshots already there (so holds no lease on them) and is held; X is removed;
// the pull then completes with a whole image, because GC waits for pulls in flight.
func TestRemoveWhilePullingTheSameImage(t *testing.T) {
	img := testImage(t, 1, "")
	e := newEnv(t, envOpts{images: map[string]v1.Image{"x:a": img, "x:b": img}})
	e.pull(t, "x:a")
	g := e.local.arm("x:b")
	done := make(chan error, 1)
	go func() {
		_, err := e.is.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "x:b"}})
		done <- err
	}()
	<-g.held
	e.remove(t, "x:a")
	if got := e.status(t, "x:a"); got != nil {
		t.Fatalf("removed image still reported: %v", got)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("pull racing a remove: %v", err)
	}
	st := e.status(t, "x:b")
	if st == nil || len(st.RepoTags) != 1 || st.RepoTags[0] != "docker.io/library/x:b" {
		t.Fatalf("after the pull: %v", st)
	}
	e.noLeaks(t)
	e.remove(t, "x:b")
	e.noLeaks(t)
}
