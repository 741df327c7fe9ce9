package bench

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/journal"
)

// RepoPrefix starts the repository of every image the bench pulls (after the registry host).
// `criimage bench` refuses a runtime whose store holds an image under it on any host, and removes
// what it pulled under it on its own registry.
const RepoPrefix = "anon/bench/"

// Images are the benchmark images in the fixture registry, pushed by PushImages; the fresh
// images of the concurrent cases are pushed per run, with content unique to the run.
type Images struct {
	reg               *registry.Registry
	large, huge, many pushed   // Ref "" when no chosen case pulls it
	list              []string // the list cases' references
	ids               map[string]bool
}

// Host is the fixture registry's host: every image the bench pulls is Host()/RepoPrefix….
func (im *Images) Host() string { return im.reg.PlainHost() }

// PushImages builds the images of the cases o chooses and pushes them to reg.
func PushImages(reg *registry.Registry, o Options) (*Images, error) {
	im := &Images{reg: reg, ids: map[string]bool{}}
	var err error
	o.logf("building and pushing images")
	if o.want(o.largeCase()) {
		if im.large, err = largeImage(reg, o.Large, o.LargeN, RepoPrefix+"large"); err != nil {
			return nil, fmt.Errorf("bench: %s image: %w", o.largeCase(), err)
		}
		im.ids[im.large.ID] = true
	}
	if o.want(o.hugeCase()) {
		if im.huge, err = largeImage(reg, o.Huge, o.HugeN, RepoPrefix+"huge"); err != nil {
			return nil, fmt.Errorf("bench: %s image: %w", o.hugeCase(), err)
		}
		im.ids[im.huge.ID] = true
	}
	if o.want(o.manyCase()) {
		if im.many, err = manyLayersImage(reg, o.ManyLayers, RepoPrefix+"many"); err != nil {
			return nil, fmt.Errorf("bench: %s image: %w", o.manyCase(), err)
		}
		im.ids[im.many.ID] = true
	}
	if o.wantList() {
		o.logf("pushing %d tiny unique images", o.ListN)
		refs, ids, err := listImages(reg, o.ListN, RepoPrefix+"list")
		if err != nil {
			return nil, fmt.Errorf("bench: list images: %w", err)
		}
		im.list = refs
		for _, id := range ids {
			im.ids[id] = true
		}
	}
	return im, nil
}

// pushed is an image in the fixture registry.
type pushed struct {
	Repo, Tag string
	Ref       string          // host/repo:tag
	ID        string          // "sha256:<config digest>", what CRI reports as the image's Id
	Blobs     []digest.Digest // config + layers
	Size      int64           // config + layers, compressed
}

func push(reg *registry.Registry, img fixtures.Image, repo, tag string) (pushed, error) {
	if err := img.Push(reg, repo, tag); err != nil {
		return pushed{}, err
	}
	p := pushed{Repo: repo, Tag: tag, Ref: reg.PlainHost() + "/" + repo + ":" + tag, ID: img.Config.String(), Size: int64(img.ContentSize)}
	p.Blobs = append(p.Blobs, img.Config)
	p.Blobs = append(p.Blobs, img.Layers...)
	return p, nil
}

// largeImage builds the catalog's "large" image (size bytes over layers layers) and pushes it.
func largeImage(reg *registry.Registry, size int64, layers int, repo string) (pushed, error) {
	s, err := fixtures.Catalog(fixtures.Options{LargeSize: size, LargeLayers: layers, ForeignURL: reg.ForeignURL()})
	if err != nil {
		return pushed{}, err
	}
	img, err := s.Image(fixtures.NameLarge)
	if err != nil {
		return pushed{}, err
	}
	return push(reg, img, repo, "v1")
}

// manyLayersImage pushes the catalog's "many-layers" image with n layers.
func manyLayersImage(reg *registry.Registry, n int, repo string) (pushed, error) {
	s, err := fixtures.Catalog(fixtures.Options{ManyLayers: n, ForeignURL: reg.ForeignURL()})
	if err != nil {
		return pushed{}, err
	}
	img, err := s.Image(fixtures.NameManyLayers)
	if err != nil {
		return pushed{}, err
	}
	return push(reg, img, repo, "v1")
}

// listImages pushes n tiny images that share one layer and differ in their config (so each has
// its own ID) as repo:i00000 … and returns their references and IDs.
func listImages(reg *registry.Registry, n int, repo string) (refs, ids []string, err error) {
	base := fixtures.Unique("criimage-bench-list-base", 1, 0)
	for d, b := range base.Blobs {
		if d == base.Config {
			continue
		}
		if _, err := reg.PutBlob(repo, b); err != nil {
			return nil, nil, err
		}
	}
	var cfg map[string]any
	if err := json.Unmarshal(base.Blobs[base.Config], &cfg); err != nil {
		return nil, nil, fmt.Errorf("base config: %w", err)
	}
	var man map[string]any
	if err := json.Unmarshal(base.Manifest, &man); err != nil {
		return nil, nil, fmt.Errorf("base manifest: %w", err)
	}
	inner, _ := cfg["config"].(map[string]any)
	if inner == nil {
		inner = map[string]any{}
		cfg["config"] = inner
	}
	refs, ids = make([]string, 0, n), make([]string, 0, n)
	for i := range n {
		inner["Labels"] = map[string]string{"io.criimage.bench.list": fmt.Sprint(i)}
		cb, err := json.Marshal(cfg)
		if err != nil {
			return nil, nil, err
		}
		cd, err := reg.PutBlob(repo, cb)
		if err != nil {
			return nil, nil, err
		}
		c := man["config"].(map[string]any)
		c["digest"], c["size"] = cd.String(), len(cb)
		mb, err := json.Marshal(man)
		if err != nil {
			return nil, nil, err
		}
		tag := fmt.Sprintf("i%05d", i)
		if _, err := reg.PutManifest(repo, tag, base.MediaType, mb); err != nil {
			return nil, nil, err
		}
		refs = append(refs, reg.PlainHost()+"/"+repo+":"+tag)
		ids = append(ids, cd.String())
	}
	return refs, ids, nil
}

// blobGets counts GETs of each digest in entries (2xx or aborted), as Journal.BlobGets does.
func blobGets(entries []journal.Entry, repo string, ds []digest.Digest) (maxPer, total int) {
	want := map[digest.Digest]int{}
	for _, d := range ds {
		want[d] = 0
	}
	for _, e := range entries {
		if e.Method != http.MethodGet || e.Kind != "blob" || e.Repo != repo {
			continue
		}
		if _, ok := want[e.Digest]; !ok {
			continue
		}
		if (e.Status >= 200 && e.Status < 300) || e.Aborted {
			want[e.Digest]++
		}
	}
	for _, n := range want {
		total += n
		maxPer = max(maxPer, n)
	}
	return maxPer, total
}
