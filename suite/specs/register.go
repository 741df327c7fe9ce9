// Package specs is the conformance suite's spec tree: target-agnostic ginkgo v2 specs for the CRI
// ImageService, each with a stable ID ("AUTH-003"), labels (area:…, feature:…, and one of
// conformance / recommended / informational) and the api.proto statements it checks (IS-…, CV-…).
//
// Register builds the tree around one harness.Env; the same tree runs from `go test ./suite/...`,
// from a `go test -c` binary, and from `criimage test`.
package specs

import (
	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// Register builds the whole spec tree around env. Call it once, before RunSpecs.
func Register(env *harness.Env) error {
	su, err := framework.New(env)
	if err != nil {
		return err
	}
	preflight(su)
	references(su)
	lifecycle(su)
	statusSpecs(su)
	listSpecs(su)
	removeSpecs(su)
	fsSpecs(su)
	authSpecs(su)
	leakSpecs(su)
	handlerSpecs(su)
	formatSpecs(su)
	failureSpecs(su)
	cancelSpecs(su)
	raceSpecs(su)
	restartSpecs(su)
	return nil
}
