package soak

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	imgfixtures "github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/auth"
	"github.com/criimage/criimage/registry/faults"
	"github.com/criimage/criimage/registry/route"
)

// image is one reference the storm pulls, with what a pull of it must do.
type image struct {
	ref   string
	id    string // expected image ID ("" for images that must fail)
	auth  *runtime.AuthConfig
	kind  string // the op name its pulls are counted under
	fails bool   // every pull must fail (a fault on every blob)
}

// fixtures are the soak's two registries and what they serve.
type fixtures struct {
	reg, bait *registry.Registry
	healthy   []image // anonymous, some sharing layers
	authed    []image // token/ and basic/ with the fixture user
	faulted   []image // reset, corrupt, truncate, 503 on every blob GET
	baits     []image // a registry whose token service redirects every request elsewhere
	big       []image // multi-MiB layers for the crash loop
}

func userPass() *runtime.AuthConfig {
	return &runtime.AuthConfig{Username: auth.FixtureUser, Password: auth.FixturePassword}
}

func newFixtures(ctx context.Context) (*fixtures, error) {
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		return nil, err
	}
	bait, err := registry.Start(ctx, registry.Options{ForeignAddr: "127.0.0.3:0"})
	if err != nil {
		reg.Close()
		return nil, err
	}
	fx := &fixtures{reg: reg, bait: bait}
	push := func(r *registry.Registry, img imgfixtures.Image, repo string, a *runtime.AuthConfig, kind string, fails bool) (image, error) {
		if err := img.Push(r, repo, "v1"); err != nil {
			return image{}, fmt.Errorf("seed %s: %w", repo, err)
		}
		id := img.ID
		if fails {
			id = ""
		}
		return image{ref: r.PlainHost() + "/" + repo + ":v1", id: id, auth: a, kind: kind, fails: fails}, nil
	}
	add := func(list *[]image, r *registry.Registry, img imgfixtures.Image, repo string, a *runtime.AuthConfig, kind string, fails bool) error {
		im, err := push(r, img, repo, a, kind, fails)
		if err == nil {
			*list = append(*list, im)
		}
		return err
	}
	for i := range 12 {
		if err := add(&fx.healthy, reg, imgfixtures.Unique(fmt.Sprintf("soak-%d", i), 2, 16<<10), fmt.Sprintf("anon/soak-%d", i), nil, "pull-healthy", false); err != nil {
			return nil, fx.closeWith(err)
		}
	}
	for i := range 4 { // other configs over the layers of soak-0..3: pulls sharing downloads
		if err := add(&fx.healthy, reg, imgfixtures.UniqueVariant(fmt.Sprintf("soak-%d", i), "variant", 2, 16<<10), fmt.Sprintf("anon/soak-variant-%d", i), nil, "pull-healthy", false); err != nil {
			return nil, fx.closeWith(err)
		}
	}
	for i, ns := range []string{"token", "token", "basic", "token-get"} {
		if err := add(&fx.authed, reg, imgfixtures.Unique(fmt.Sprintf("soak-auth-%d", i), 1, 16<<10), fmt.Sprintf("%s/soak-auth-%d", ns, i), userPass(), "pull-auth", false); err != nil {
			return nil, fx.closeWith(err)
		}
	}
	for i, act := range []faults.Action{
		{Kind: faults.KindReset, AfterBytes: 4096},
		{Kind: faults.KindCorrupt, AfterBytes: 100},
		{Kind: faults.KindTruncate, AfterBytes: 4096},
		{Kind: faults.KindStatus, Status: http.StatusServiceUnavailable},
	} {
		repo := fmt.Sprintf("anon/soak-fault-%d", i)
		if err := add(&fx.faulted, reg, imgfixtures.Unique(fmt.Sprintf("soak-fault-%d", i), 1, 64<<10), repo, nil, "pull-faulted", true); err != nil {
			return nil, fx.closeWith(err)
		}
		reg.Faults().Arm(faults.Rule{Match: route.Match{Method: http.MethodGet, Repo: repo, Kind: route.KindBlob}, Action: act})
	}
	// The bait registry's token service sends every request elsewhere: POST (password form) to
	// its foreign host, GET (Basic) to the recorder on its own IP and another port.
	bait.Faults().Arm(faults.Rule{Match: route.Match{Listener: route.ListenerPlain, Kind: route.KindToken, Method: http.MethodPost},
		Action: faults.Action{Kind: faults.KindRedirectAway, Status: http.StatusTemporaryRedirect}})
	bait.Faults().Arm(faults.Rule{Match: route.Match{Listener: route.ListenerPlain, Kind: route.KindToken, Method: http.MethodGet},
		Action: faults.Action{Kind: faults.KindRedirectAway, Status: http.StatusPermanentRedirect, Location: bait.OtherPortURL()}})
	for i, ns := range []string{"token", "token-get"} {
		if err := add(&fx.baits, bait, imgfixtures.Unique(fmt.Sprintf("soak-bait-%d", i), 1, 1024), fmt.Sprintf("%s/soak-bait-%d", ns, i), userPass(), "pull-bait", false); err != nil {
			return nil, fx.closeWith(err)
		}
	}
	for i := range 4 {
		if err := add(&fx.big, reg, imgfixtures.Unique(fmt.Sprintf("soak-big-%d", i), 4, 2<<20), fmt.Sprintf("anon/soak-big-%d", i), nil, "pull-big", false); err != nil {
			return nil, fx.closeWith(err)
		}
	}
	return fx, nil
}

func (fx *fixtures) closeWith(err error) error {
	fx.close()
	return err
}

func (fx *fixtures) close() {
	fx.reg.Close()
	fx.bait.Close()
}

// credentialHits counts, per listener other than the registries' own plain listeners, the
// requests that carried a fixture credential.
func (fx *fixtures) credentialHits() map[string]int {
	hits := map[string]int{}
	for name, r := range map[string]*registry.Registry{"registry": fx.reg, "bait registry": fx.bait} {
		j := r.Journal()
		basic := auth.FixtureUser + ":" + auth.FixturePassword
		secrets := map[string]bool{j.Fingerprint(auth.FixturePassword): true, j.Fingerprint(basic): true,
			j.Fingerprint(base64.StdEncoding.EncodeToString([]byte(basic))): true}
		for _, e := range j.Entries() {
			if e.Listener == route.ListenerPlain {
				continue
			}
			carried := e.AuthScheme != ""
			for _, s := range e.Secrets {
				carried = carried || secrets[s]
			}
			if carried {
				hits[name+" "+string(e.Listener)]++
			}
		}
	}
	return hits
}
