package control_test

import (
	"fmt"
	"testing"

	"github.com/criimage/criimage/registry"
	"github.com/criimage/criimage/registry/control"
)

// A registry that serves other machines says so in /endpoints, and its own listeners are valid
// redirect targets although they are not on loopback by name; other hosts stay refused.
func TestRemoteRegistryOverControl(t *testing.T) {
	reg, err := registry.Start(t.Context(), registry.Options{AllowRemote: true, Advertise: "registry.remote.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	srv, err := control.Start(t.Context(), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	st, out := call(t, "GET", srv.URL()+"/endpoints", "")
	if st != 200 || out["remote"] != true || out["plain"] != reg.PlainHost() || out["otherPort"] != reg.OtherPortURL() {
		t.Fatalf("endpoints: %d %v", st, out)
	}
	rule := func(location string) string {
		return fmt.Sprintf(`{"match":{"kind":"token"},"action":{"kind":"redirect-away","status":308,"location":%q}}`, location)
	}
	for _, loc := range []string{reg.OtherPortURL(), reg.ForeignURL(), "http://" + reg.PlainHost()} {
		if st, out := call(t, "POST", srv.URL()+"/faults", rule(loc)); st != 200 {
			t.Errorf("redirect-away to the registry's own %s: %d %v", loc, st, out)
		}
	}
	for _, loc := range []string{"http://registry.remote.test:1", "http://192.0.2.9:80"} {
		if st, _ := call(t, "POST", srv.URL()+"/faults", rule(loc)); st != 400 {
			t.Errorf("redirect-away to %s (not the registry's): %d, want 400", loc, st)
		}
	}
}
