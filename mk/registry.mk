# Fixture registry targets (owner: registry). Included by the top-level Makefile.

.PHONY: registry-conformance

## registry-conformance: the OCI distribution-spec conformance binary against the fixture registry (needs the Go module proxy).
registry-conformance:
	CRIIMAGE_CONFORMANCE=1 go test -count=1 -run TestDistributionSpecConformance -v ./registry/
