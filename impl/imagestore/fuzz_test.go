package imagestore

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// FuzzResolve checks the lookup rules hold for any input: no panic; "" and only "" among
// non-hex inputs is InvalidArgument; anything that resolves either is a name Normalize maps to
// one of the image's records, the exact ID, or a hex prefix of at least MinIDPrefix characters;
// and every normalized name is a fixed point of Normalize.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"", "busybox", "aaaa", "sha256:aaaa1", "BusyBox", "busybox@" + dgA, idA, "a:b@c", "sha256:", "docker.io/library/busybox:latest"} {
		f.Add(s)
	}
	s := testStore()
	f.Fuzz(func(t *testing.T, key string) {
		img, err := s.Resolve(key)
		if err != nil {
			if !errdefs.IsNotFound(err) && !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Resolve(%q): unexpected error class %v", key, err)
			}
			if key == "" && !errdefs.IsInvalidArgument(err) {
				t.Fatalf(`Resolve("") = %v`, err)
			}
			return
		}
		byName := false
		if n, nerr := Normalize(key); nerr == nil {
			for _, r := range img.References {
				if r == n.String() {
					byName = true
				}
				if m, merr := Normalize(n.String()); merr != nil || m.String() != n.String() {
					t.Fatalf("Normalize not idempotent on %q: %v %v", n, m, merr)
				}
			}
		}
		p := strings.TrimPrefix(key, "sha256:")
		byID := key == img.ID || (len(p) >= MinIDPrefix && strings.HasPrefix(img.ID, "sha256:"+p))
		if !byName && !byID {
			t.Fatalf("Resolve(%q) = %s, neither by name nor by ID", key, img.ID)
		}
	})
}
