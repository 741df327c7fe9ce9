package mutants_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/mutants"
)

// check shows that a mutant changes an answer: good is the identity proxy, bad the mutant, both
// in front of the same reference.
type check func(t *testing.T, e *env, good, bad runtime.ImageServiceClient)

func userPass() *runtime.AuthConfig {
	return &runtime.AuthConfig{Username: harness.FixtureUser, Password: harness.FixturePassword}
}

// withStatus pulls fresh content through good and returns what good and bad report for it.
func withStatus(t *testing.T, e *env, good, bad runtime.ImageServiceClient) (ref string, g, b *runtime.Image) {
	_, _, ref = e.unique(t, "anon", "v1")
	mustPull(t, good, ref)
	return ref, mustStatus(t, good, ref), mustStatus(t, bad, ref)
}

func checks() map[string]check {
	return map[string]check{
		mutants.AuthDropAll: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "basic", "v1")
			if _, err := pull(context.Background(), bad, ref, userPass()); err == nil {
				t.Fatal("the mutant pulled a Basic-auth image")
			}
			if _, err := pull(context.Background(), good, ref, userPass()); err != nil {
				t.Fatal(err)
			}
		},
		mutants.AuthDropRegistryToken: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, repo, ref := e.unique(t, "regtoken", "v1")
			a := &runtime.AuthConfig{RegistryToken: e.reg.Auth().IssueRegistryToken("repository:" + repo + ":pull")}
			if _, err := pull(context.Background(), bad, ref, a); err == nil {
				t.Fatal("the mutant pulled with a registry token it dropped")
			}
			if _, err := pull(context.Background(), good, ref, a); err != nil {
				t.Fatal(err)
			}
		},
		mutants.LeakPasswordInError: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "basic", "v1")
			a := &runtime.AuthConfig{Username: harness.FixtureUser, Password: "criimage-wrong-password"}
			_, gerr := pull(context.Background(), good, ref, a)
			_, berr := pull(context.Background(), bad, ref, a)
			if gerr == nil || berr == nil {
				t.Fatalf("wrong password pulled: %v / %v", gerr, berr)
			}
			if strings.Contains(gerr.Error(), a.Password) || !strings.Contains(berr.Error(), a.Password) {
				t.Fatalf("good %q, bad %q", gerr, berr)
			}
		},
		mutants.PullDetached: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			for _, c := range []struct {
				name     string
				cli      runtime.ImageServiceClient
				detached bool
			}{{"identity", good, false}, {"mutant", bad, true}} {
				img := fixtures.Unique(t.Name()+c.name, 2, 1024)
				repo := fmt.Sprintf("anon/mt-detached-%s-%d", c.name, time.Now().UnixNano())
				if err := img.Push(e.reg, repo, "v1"); err != nil {
					t.Fatal(err)
				}
				ref := e.reg.PlainHost() + "/" + repo + ":v1"
				g := e.reg.Gates().Arm(route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[1]})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { _, err := pull(ctx, c.cli, ref, nil); done <- err }()
				wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := g.Wait(wctx); err != nil {
					t.Fatal(err)
				}
				cancel()
				if err := <-done; status.Code(err) != codes.Canceled {
					t.Fatalf("%s: pull after cancel: %v", c.name, err)
				}
				if !c.detached {
					select {
					case <-g.ClientGone():
					case <-wctx.Done():
						t.Fatal("identity: the cancel never reached the registry")
					}
					g.Release()
					wcancel()
					continue
				}
				// The mutant's pull goes on: released, it completes without its client.
				g.Release()
				tick := time.NewTicker(20 * time.Millisecond)
				for mustStatus(t, good, ref) == nil {
					select {
					case <-tick.C:
					case <-wctx.Done():
						t.Fatal("mutant: the detached pull never completed")
					}
				}
				tick.Stop()
				wcancel()
			}
		},
		mutants.AuthServerAddrDropped: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "basic", "v1")
			a := userPass()
			a.ServerAddress = "https://registry.example.invalid"
			if _, err := pull(context.Background(), good, ref, a); err == nil {
				t.Fatal("identity: credentials for another server were used")
			}
			if _, err := pull(context.Background(), bad, ref, a); err != nil {
				t.Fatalf("mutant: %v", err)
			}
		},
		mutants.PullConcurrentFails: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			img, repo, ref := e.unique(t, "anon", "v1")
			g := e.reg.Gates().Arm(route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[0]})
			first := make(chan error, 1)
			go func() { _, err := pull(context.Background(), bad, ref, nil); first <- err }()
			wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := g.Wait(wctx); err != nil {
				t.Fatal(err)
			}
			_, err := pull(context.Background(), bad, ref, nil)
			g.Release()
			if status.Code(err) != codes.AlreadyExists {
				t.Fatalf("second pull: %v", err)
			}
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if _, err := pull(context.Background(), bad, ref, nil); err != nil {
				t.Fatalf("a later pull: %v", err)
			}
		},
		mutants.RefDigestDropped: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			img, repo, _ := e.unique(t, "anon", "v1")
			other := fixtures.Unique(t.Name()+"other", 1, 256)
			if err := other.Push(e.reg, repo, "v2"); err != nil {
				t.Fatal(err)
			}
			ref := e.reg.PlainHost() + "/" + repo + ":v2@" + img.Digest.String()
			if id := mustPull(t, good, ref); id != img.ID {
				t.Fatalf("identity pulled %s", id)
			}
			if id := mustPull(t, bad, ref); id != other.ID {
				t.Fatalf("mutant pulled %s", id)
			}
		},
		mutants.PullCachedTag: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			a, repo, ref := e.unique(t, "anon", "t")
			if id := mustPull(t, bad, ref); id != a.ID {
				t.Fatalf("first pull %s", id)
			}
			b := fixtures.Unique(t.Name()+"moved", 1, 256)
			if err := b.Push(e.reg, repo, "t"); err != nil {
				t.Fatal(err)
			}
			if id := mustPull(t, bad, ref); id != a.ID {
				t.Fatalf("mutant saw the moved tag: %s", id)
			}
			if id := mustPull(t, good, ref); id != b.ID {
				t.Fatalf("identity: %s, want the moved tag's %s", id, b.ID)
			}
		},
		mutants.PullErrorCodeUnknown: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			ref := e.reg.PlainHost() + "/anon/UPPER:v1"
			if _, err := pull(context.Background(), good, ref, nil); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("identity: %v", err)
			}
			if _, err := pull(context.Background(), bad, ref, nil); status.Code(err) != codes.Unknown {
				t.Fatalf("mutant: %v", err)
			}
		},
		mutants.DigestsMissing: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, g, b := withStatus(t, e, good, bad)
			if len(g.GetRepoDigests()) == 0 || len(b.GetRepoDigests()) != 0 {
				t.Fatal("digests")
			}
		},
		mutants.RuntimeHandlerIgnored: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			req := &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref, RuntimeHandler: "criimage-no-such-handler"}}
			if _, err := good.PullImage(context.Background(), req); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("identity: unknown handler: %v", err)
			}
			if _, err := bad.PullImage(context.Background(), req); err != nil {
				t.Fatalf("mutant: unknown handler: %v", err)
			}
		},
		mutants.FailedPullVisible: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, repo, _ := e.unique(t, "anon", "v1")
			ref := e.reg.PlainHost() + "/" + repo + ":nosuchtag"
			if _, err := pull(context.Background(), bad, ref, nil); err == nil {
				t.Fatal("pulled a missing tag")
			}
			if mustStatus(t, good, ref) != nil || mustStatus(t, bad, ref) == nil || findRef(list(t, bad), ref) == nil {
				t.Fatal("the mutant does not show the failed reference")
			}
		},
		mutants.RefManifestDigest: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			img, _, ref := e.unique(t, "anon", "v1")
			id := mustPull(t, bad, ref)
			if id != img.Digest.String() || mustStatus(t, good, ref).GetId() != img.ID {
				t.Fatalf("image_ref %s, manifest %s", id, img.Digest)
			}
		},
		mutants.RefNoSHA256Prefix: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			img, _, ref := e.unique(t, "anon", "v1")
			if id := mustPull(t, bad, ref); id != strings.TrimPrefix(img.ID, "sha256:") || mustStatus(t, bad, ref).GetId() != img.ID {
				t.Fatalf("image_ref %s", id)
			}
		},
		mutants.ListEmpty: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			if len(list(t, good)) == 0 || len(list(t, bad)) != 0 {
				t.Fatal("lists")
			}
		},
		mutants.ListOmitNewest: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, a := e.unique(t, "anon", "a")
			_, _, b := e.unique(t, "anon", "b")
			mustPull(t, bad, a)
			mustPull(t, bad, b)
			l := list(t, bad)
			if findRef(l, a) == nil || findRef(l, b) != nil || findRef(list(t, good), b) == nil {
				t.Fatal("the newest image is listed")
			}
		},
		mutants.ListDuplicate: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			if g, b := len(list(t, good)), len(list(t, bad)); b != 2*g {
				t.Fatalf("listed %d vs %d", g, b)
			}
		},
		mutants.StreamEmptyBatch: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			gb, err := streamed(context.Background(), good)
			if err != nil || len(gb) == 0 || len(gb[0]) == 0 {
				t.Fatalf("identity stream %v: %v", gb, err)
			}
			bb, err := streamed(context.Background(), bad)
			if err != nil || len(bb) != len(gb)+1 || len(bb[0]) != 0 {
				t.Fatalf("mutant stream %d batches, first %d: %v", len(bb), len(bb[0]), err)
			}
		},
		mutants.StreamDuplicate: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			bb, err := streamed(context.Background(), bad)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			dup := false
			for _, b := range bb {
				for _, img := range b {
					dup = dup || seen[img.GetId()]
					seen[img.GetId()] = true
				}
			}
			if !dup {
				t.Fatal("no duplicate")
			}
		},
		mutants.StreamNoEOF: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			if _, err := streamed(context.Background(), good); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			bb, err := streamed(ctx, bad)
			if status.Code(err) != codes.DeadlineExceeded || len(bb) == 0 {
				t.Fatalf("mutant stream: %d batches, %v", len(bb), err)
			}
		},
		mutants.RemoveUntag: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			img, repo, v1 := e.unique(t, "anon", "v1")
			if err := img.Push(e.reg, repo, "v2"); err != nil {
				t.Fatal(err)
			}
			v2 := e.reg.PlainHost() + "/" + repo + ":v2"
			mustPull(t, good, v1)
			mustPull(t, good, v2)
			if err := remove(context.Background(), bad, v1); err != nil {
				t.Fatal(err)
			}
			if mustStatus(t, good, v1) != nil || mustStatus(t, good, v2).GetId() != img.ID {
				t.Fatal("not untagged")
			}
		},
		mutants.RemoveNoop: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			if err := remove(context.Background(), bad, ref); err != nil || mustStatus(t, good, ref) == nil {
				t.Fatalf("removed: %v", err)
			}
		},
		mutants.RemoveAbsentNotFound: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			ref := e.reg.PlainHost() + "/anon/never:v1"
			if err := remove(context.Background(), good, ref); err != nil {
				t.Fatal(err)
			}
			if err := remove(context.Background(), bad, ref); status.Code(err) != codes.NotFound {
				t.Fatalf("mutant: %v", err)
			}
		},
		mutants.StatusAbsentNotFound: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			ref := e.reg.PlainHost() + "/anon/never:v1"
			if mustStatus(t, good, ref) != nil {
				t.Fatal("present")
			}
			if _, err := statusOf(context.Background(), bad, ref, false); status.Code(err) != codes.NotFound {
				t.Fatalf("mutant: %v", err)
			}
		},
		mutants.StatusInfoNotVerbose: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			ref, _, _ := withStatus(t, e, good, bad)
			g, _ := statusOf(context.Background(), good, ref, false)
			b, _ := statusOf(context.Background(), bad, ref, false)
			if len(g.GetInfo()) != 0 || len(b.GetInfo()) == 0 {
				t.Fatalf("info %v / %v", g.GetInfo(), b.GetInfo())
			}
		},
		mutants.StatusInfoInvalidJSON: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			ref, _, _ := withStatus(t, e, good, bad)
			g, _ := statusOf(context.Background(), good, ref, true)
			b, _ := statusOf(context.Background(), bad, ref, true)
			if !json.Valid([]byte(g.GetInfo()["info"])) || json.Valid([]byte(b.GetInfo()["info"])) {
				t.Fatal("info validity unchanged")
			}
		},
		mutants.StatusPrefixWrongImage: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, a := e.unique(t, "anon", "a")
			_, _, b := e.unique(t, "anon", "b")
			id := mustPull(t, good, a)
			mustPull(t, good, b)
			short := strings.TrimPrefix(id, "sha256:")[:12]
			if mustStatus(t, good, short).GetId() != id {
				t.Fatal("identity: prefix lookup")
			}
			if got := mustStatus(t, bad, short); got == nil || got.GetId() == id {
				t.Fatalf("mutant: prefix lookup gave %v", got)
			}
		},
		mutants.StatusEmptyMatches: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			if resp, err := statusOf(context.Background(), good, "", false); err == nil && resp.GetImage() != nil {
				t.Fatal("identity matched \"\"")
			}
			if mustStatus(t, bad, "") == nil {
				t.Fatal("mutant did not match \"\"")
			}
		},
		mutants.StatusTagCaseFold: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "MixedCase")
			mustPull(t, good, ref)
			lower := strings.TrimSuffix(ref, "MixedCase") + "mixedcase"
			if mustStatus(t, good, lower) != nil || mustStatus(t, bad, lower) == nil {
				t.Fatal("case folding unchanged")
			}
		},
		mutants.SizeZero: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			ref, g, b := withStatus(t, e, good, bad)
			if g.GetSize() == 0 || b.GetSize() != 0 || findRef(list(t, bad), ref).GetSize() != 0 {
				t.Fatal("size")
			}
		},
		mutants.UIDAndUsername: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			set, err := fixtures.Catalog(fixtures.Options{Seed: t.Name(), ForeignURL: e.reg.ForeignURL()})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{fixtures.NameUser1000, fixtures.NameUserNobody} {
				img := set.MustImage(name)
				repo := fmt.Sprintf("anon/mt-user-%d", time.Now().UnixNano())
				if err := img.Push(e.reg, repo, "v1"); err != nil {
					t.Fatal(err)
				}
				ref := e.reg.PlainHost() + "/" + repo + ":v1"
				mustPull(t, good, ref)
				g, b := mustStatus(t, good, ref), mustStatus(t, bad, ref)
				if (g.GetUid() != nil) == (g.GetUsername() != "") || b.GetUid() == nil || b.GetUsername() == "" {
					t.Fatalf("%s: identity %v/%q, mutant %v/%q", name, g.GetUid(), g.GetUsername(), b.GetUid(), b.GetUsername())
				}
			}
		},
		mutants.TagsMissing: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, g, b := withStatus(t, e, good, bad)
			if len(g.GetRepoTags()) == 0 || len(b.GetRepoTags()) != 0 {
				t.Fatal("tags")
			}
		},
		mutants.PinnedIgnored: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			pinned := config.Reference().Pinned
			repo, tag, ok := harness.DockerLibraryRef(pinned)
			if !ok {
				t.Fatalf("pinned %s", pinned)
			}
			if err := fixtures.Unique(t.Name(), 1, 128).Push(e.reg, repo, tag); err != nil {
				t.Fatal(err)
			}
			mustPull(t, good, pinned)
			defer remove(context.Background(), good, pinned)
			if !mustStatus(t, good, pinned).GetPinned() || mustStatus(t, bad, pinned).GetPinned() {
				t.Fatal("pinned unchanged")
			}
		},
		mutants.RepullRemovesFirst: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, repo, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			if err := e.reg.DeleteTag(repo, "v1"); err != nil {
				t.Fatal(err)
			}
			if _, err := pull(context.Background(), bad, ref, nil); err == nil {
				t.Fatal("a pull of a deleted tag succeeded")
			}
			if mustStatus(t, good, ref) != nil {
				t.Fatal("the failed re-pull through the mutant left the image in place")
			}
		},
		mutants.PullsSerialized: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			img, repo, ref := e.unique(t, "anon", "v1")
			_, _, other := e.unique(t, "anon", "v1")
			g := e.reg.Gates().Arm(route.Match{Method: "GET", Repo: repo, Kind: route.KindBlob, Digest: img.Layers[0]})
			defer e.reg.Gates().Disarm(g)
			first := make(chan error, 1)
			go func() { _, err := pull(context.Background(), bad, ref, nil); first <- err }()
			wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := g.Wait(wctx); err != nil {
				t.Fatal(err)
			}
			if _, err := pull(context.Background(), good, other, nil); err != nil {
				t.Fatalf("identity: a pull beside a held one: %v", err)
			}
			sctx, scancel := context.WithTimeout(context.Background(), time.Second)
			defer scancel()
			if _, err := pull(sctx, bad, other, nil); status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("mutant: a pull beside a held one: %v, want it to wait", err)
			}
			g.Release()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
		},
		mutants.PinnedAll: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			ref, g, b := withStatus(t, e, good, bad)
			if g.GetPinned() || !b.GetPinned() || !findRef(list(t, bad), ref).GetPinned() {
				t.Fatal("pinned")
			}
		},
		mutants.ListSizeDiffers: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			ref, g, b := withStatus(t, e, good, bad)
			if g.GetSize() != b.GetSize() || findRef(list(t, bad), ref).GetSize() != g.GetSize()+1 {
				t.Fatal("size")
			}
		},
		mutants.StatusTruncatedNoTags: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			id := mustPull(t, good, ref)
			short := strings.TrimPrefix(id, "sha256:")[:12]
			if len(mustStatus(t, good, short).GetRepoTags()) != 1 || len(mustStatus(t, bad, short).GetRepoTags()) != 0 || len(mustStatus(t, bad, id).GetRepoTags()) != 1 {
				t.Fatal("repo_tags")
			}
		},
		mutants.RemoveTruncatedNoop: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			id := mustPull(t, good, ref)
			short := strings.TrimPrefix(id, "sha256:")[:12]
			if mustStatus(t, bad, short) == nil {
				t.Fatal("the reference does not resolve a 12-digit ID")
			}
			if err := remove(context.Background(), bad, short); err != nil || mustStatus(t, good, ref) == nil {
				t.Fatalf("mutant removed: %v", err)
			}
			if err := remove(context.Background(), good, short); err != nil || mustStatus(t, good, ref) != nil {
				t.Fatalf("identity did not remove: %v", err)
			}
		},
		mutants.DigestPullTagged: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			img, repo, _ := e.unique(t, "anon", "v1")
			byDigest := e.reg.PlainHost() + "/" + repo + "@" + img.Digest.String()
			mustPull(t, good, byDigest)
			if len(mustStatus(t, good, byDigest).GetRepoTags()) != 0 || !slices.Equal(mustStatus(t, bad, byDigest).GetRepoTags(), []string{e.reg.PlainHost() + "/" + repo + ":latest"}) {
				t.Fatal("repo_tags")
			}
		},
		mutants.ListFilterIgnored: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, a := e.unique(t, "anon", "v1")
			_, _, b := e.unique(t, "anon", "v1")
			mustPull(t, good, a)
			mustPull(t, good, b)
			filter := &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: a}}
			g, err := good.ListImages(context.Background(), &runtime.ListImagesRequest{Filter: filter})
			if err != nil || len(g.GetImages()) != 1 {
				t.Fatalf("identity: ListImages(filter %s): %d images, %v; want 1", a, len(g.GetImages()), err)
			}
			got, err := bad.ListImages(context.Background(), &runtime.ListImagesRequest{Filter: filter})
			if err != nil || findRef(got.GetImages(), b) == nil {
				t.Fatalf("mutant: ListImages(filter %s): %d images, %v; want %s among them too", a, len(got.GetImages()), err, b)
			}
		},
		mutants.PullAuthAsNotFound: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "basic", "v1")
			if _, err := pull(context.Background(), good, ref, nil); status.Code(err) != codes.Unauthenticated {
				t.Fatalf("identity: %v", err)
			}
			if _, err := pull(context.Background(), bad, ref, nil); status.Code(err) != codes.NotFound {
				t.Fatalf("mutant: %v", err)
			}
		},
		mutants.PullRetries429: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, repo, ref := e.unique(t, "anon", "v1")
			id := e.reg.Faults().Arm(faults.Rule{Match: route.Match{Repo: repo, Kind: route.KindManifest}, Action: faults.Action{Kind: faults.KindStatus, Status: 429, RetryAfter: "1"}})
			defer e.reg.Faults().Clear(id)
			if _, err := pull(context.Background(), good, ref, nil); status.Code(err) != codes.Unknown {
				t.Fatalf("identity: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			if _, err := pull(ctx, bad, ref, nil); status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("mutant: %v, want it to keep retrying until the deadline", err)
			}
		},
		mutants.StreamEmptyMessage: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			filter := &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: e.reg.PlainHost() + "/anon/never:v1"}}
			for c, want := range map[runtime.ImageServiceClient]int{good: 0, bad: 1} {
				st, err := c.StreamImages(context.Background(), &runtime.StreamImagesRequest{Filter: filter})
				if err != nil {
					t.Fatal(err)
				}
				bb, err := criendpoint.Drain(st)
				if err != nil || len(bb) != want {
					t.Fatalf("%d messages, %v; want %d", len(bb), err, want)
				}
			}
		},
		mutants.StreamCancelWedges: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			ctx, cancel := context.WithCancel(context.Background())
			st, err := bad.StreamImages(ctx, &runtime.StreamImagesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recv(); err != nil {
				t.Fatal(err)
			}
			cancel()
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := bad.ListImages(context.Background(), &runtime.ListImagesRequest{})
				if status.Code(err) == codes.Unavailable {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("ListImages after an abandoned stream: %v, want Unavailable", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(list(t, good)) == 0 {
				t.Fatal("identity")
			}
		},
		mutants.PullIDAsDockerRef: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			id := "sha256:" + strings.Repeat("0", 64)
			if _, err := pull(context.Background(), good, id, nil); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("identity: %v", err)
			}
			if _, err := pull(context.Background(), bad, id, nil); status.Code(err) == codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "docker.io/library/sha256") {
				t.Fatalf("mutant: %v", err)
			}
		},
		mutants.TagMoveDropsOld: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			old, repo, ref := e.unique(t, "anon", "t")
			if err := old.Push(e.reg, repo, "keep"); err != nil {
				t.Fatal(err)
			}
			oldID := mustPull(t, good, ref)
			mustPull(t, good, e.reg.PlainHost()+"/"+repo+":keep")
			if err := fixtures.Unique(t.Name(), 1, 64).Push(e.reg, repo, "t"); err != nil {
				t.Fatal(err)
			}
			if mustPull(t, bad, ref) == oldID || mustStatus(t, good, oldID) != nil {
				t.Fatal("the old image survived the mutant's pull")
			}
		},
		mutants.RefHostLowercased: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, repo, _ := e.unique(t, "anon", "v1")
			ref := "LOCALHOST" + strings.TrimPrefix(e.reg.PlainHost(), "127.0.0.1") + "/" + repo + ":v1"
			lower := strings.ToLower(ref)
			if _, err := pull(context.Background(), bad, ref, nil); err != nil {
				t.Skipf("the plain listener as LOCALHOST: %v", err)
			}
			if mustStatus(t, good, ref) != nil || mustStatus(t, good, lower) == nil {
				t.Fatal("the mutant kept the host as written")
			}
		},
		mutants.AuthDockerAliases: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			_, repo, _ := e.unique(t, "basic", "v1")
			ref := "docker.io/" + repo + ":v1"
			a := userPass()
			a.ServerAddress = "https://index.docker.io/v1/"
			if _, err := pull(context.Background(), bad, ref, a); err == nil {
				t.Fatal("the mutant pulled with Docker Hub credentials it should have lost")
			}
			if _, err := pull(context.Background(), good, ref, a); err != nil {
				t.Fatalf("identity: %v", err)
			}
		},
		mutants.FsTimestampZero: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			if fsUsed(t, good).GetTimestamp() == 0 || fsUsed(t, bad).GetTimestamp() != 0 {
				t.Fatal("timestamp")
			}
		},
		mutants.FsNoMountpoint: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			if fsUsed(t, good).GetFsId().GetMountpoint() == "" || fsUsed(t, bad).GetFsId() != nil {
				t.Fatal("fs_id")
			}
		},
		mutants.FsUsedConstant: func(t *testing.T, e *env, good, bad runtime.ImageServiceClient) {
			g0, b0 := fsUsed(t, good).GetUsedBytes().GetValue(), fsUsed(t, bad).GetUsedBytes().GetValue()
			_, _, ref := e.unique(t, "anon", "v1")
			mustPull(t, good, ref)
			g1, b1 := fsUsed(t, good).GetUsedBytes().GetValue(), fsUsed(t, bad).GetUsedBytes().GetValue()
			if g1 <= g0 || b1 != b0 {
				t.Fatalf("identity %d→%d, mutant %d→%d", g0, g1, b0, b1)
			}
		},
	}
}

// TestProxy shows, against the real reference, that the identity proxy forwards and that every
// mutant in the catalog changes an answer the way it claims.
func TestProxy(t *testing.T) {
	e := newEnv(t)
	good := e.client(t, mutants.None)
	cs := checks()
	for _, m := range mutants.Catalog() {
		t.Run(m.Name, func(t *testing.T) {
			c, ok := cs[m.Name]
			if !ok {
				t.Fatalf("mutant %s has no proxy test", m.Name)
			}
			c(t, e, good, e.client(t, m.Name))
		})
	}
}

func TestIdentityForwards(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, mutants.None)
	img, repo, ref := e.unique(t, "basic", "v1")
	id, err := pull(context.Background(), c, ref, userPass())
	if err != nil || id != img.ID {
		t.Fatalf("pull: %s %v", id, err)
	}
	st := mustStatus(t, c, ref)
	if st.GetId() != id || st.GetSize() == 0 || findRef(list(t, c), ref) == nil {
		t.Fatalf("status %v", st)
	}
	bb, err := streamed(context.Background(), c)
	if err != nil || len(bb) != 1 || len(bb[0]) != 1 {
		t.Fatalf("stream %v %v", bb, err)
	}
	if err := remove(context.Background(), c, e.reg.PlainHost()+"/"+repo+"@"+img.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if mustStatus(t, c, ref) != nil || len(list(t, c)) != 0 {
		t.Fatal("not removed")
	}
}

func TestCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range mutants.Catalog() {
		if seen[m.Name] || m.Name == mutants.None || m.Doc == "" || len(m.Killers) == 0 {
			t.Errorf("bad catalog entry %+v", m)
		}
		seen[m.Name] = true
	}
	if len(seen) < 15 {
		t.Errorf("%d mutants, want at least 15", len(seen))
	}
	if _, err := mutants.Start(context.Background(), "unix:///nonexistent", "no-such-mutant"); err == nil {
		t.Error("unknown mutant accepted")
	}
}
