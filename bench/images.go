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

// pushed is an image in the fixture registry.
type pushed struct {
	Repo, Tag string
	Ref       string          // host/repo:tag
	Blobs     []digest.Digest // config + layers
	Size      int64           // config + layers, compressed
}

func push(reg *registry.Registry, img fixtures.Image, repo, tag string) (pushed, error) {
	if err := img.Push(reg, repo, tag); err != nil {
		return pushed{}, err
	}
	p := pushed{Repo: repo, Tag: tag, Ref: reg.PlainHost() + "/" + repo + ":" + tag, Size: int64(img.ContentSize)}
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
// its own ID) as repo:i00000 … and returns their references.
func listImages(reg *registry.Registry, n int, repo string) ([]string, error) {
	base := fixtures.Unique("criimage-bench-list-base", 1, 0)
	for d, b := range base.Blobs {
		if d == base.Config {
			continue
		}
		if _, err := reg.PutBlob(repo, b); err != nil {
			return nil, err
		}
	}
	var cfg map[string]any
	if err := json.Unmarshal(base.Blobs[base.Config], &cfg); err != nil {
		return nil, fmt.Errorf("base config: %w", err)
	}
	var man map[string]any
	if err := json.Unmarshal(base.Manifest, &man); err != nil {
		return nil, fmt.Errorf("base manifest: %w", err)
	}
	inner, _ := cfg["config"].(map[string]any)
	if inner == nil {
		inner = map[string]any{}
		cfg["config"] = inner
	}
	refs := make([]string, 0, n)
	for i := range n {
		inner["Labels"] = map[string]string{"io.criimage.bench.list": fmt.Sprint(i)}
		cb, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		cd, err := reg.PutBlob(repo, cb)
		if err != nil {
			return nil, err
		}
		c := man["config"].(map[string]any)
		c["digest"], c["size"] = cd.String(), len(cb)
		mb, err := json.Marshal(man)
		if err != nil {
			return nil, err
		}
		tag := fmt.Sprintf("i%05d", i)
		if _, err := reg.PutManifest(repo, tag, base.MediaType, mb); err != nil {
			return nil, err
		}
		refs = append(refs, reg.PlainHost()+"/"+repo+":"+tag)
	}
	return refs, nil
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
