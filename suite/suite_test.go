// The go test entry point of the conformance suite: `go test ./suite/...` runs every spec against
// the embedded reference ImageService (impl) on a real unix socket in a temp dir, unless
// -image-endpoint names another target. It reaches impl only through internal/embedded (the one wiring, shared with "criimage test").
//
//	go test ./suite/ -args -image-endpoint unix:///run/containerd/containerd.sock -features mirror
//	go test -c -o criimage-suite.test ./suite/ && ginkgo -p ./criimage-suite.test -- -image-endpoint …
package suite_test

import (
	"flag"
	"testing"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/internal/embedded"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/harness"
	"github.com/criimage/criimage/suite/specs"
)

// testConfig is the suite's configuration, bound to the test binary's flags.
var testConfig = func() *config.Config {
	c := config.Default()
	c.RegisterFlags(flag.CommandLine, "")
	return c
}()

func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	cfg := testConfig
	if cfg.ImageEndpoint == "" && cfg.Features.String() == "" {
		Expect(cfg.Features.Set(config.Reference().Features())).To(Succeed())
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := harness.NewEnv(cfg)
	if cfg.ImageEndpoint == "" { // the embedded reference; another target restarts by restart=CMD
		ref := &embedded.Reference{}
		env.Start = ref.Start
		env.Restart = ref.Restart
	}
	if err := specs.Register(env); err != nil {
		t.Fatal(err)
	}
	RunSpecs(t, "criimage conformance")
}
