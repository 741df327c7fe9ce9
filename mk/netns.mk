# The remote-runtime tests (docs/remote.md). Included by the top-level Makefile.
.PHONY: netns-test

## netns-test: a runtime on "another machine", with two network namespaces joined by a veth pair
## standing in for the machines: the fixture registry in one (listening on 10.213.0.1, advertised
## by name, -allow-remote) and criimage serve in the other, pulling plain, TLS by name and by IP,
## with auth, through the mirror and from the foreign host; then the whole suite with its registry
## in one namespace against criimage serve in the other. Needs root and ip netns; skips elsewhere,
## saying why, unless NETNS_REQUIRE=1 (CI), which makes that a failure.
NETNS_REQUIRE ?=
netns-test: build
	CRIIMAGE_NETNS_TEST_BIN=$(CURDIR)/$(BIN)/criimage CRIIMAGE_NETNS_TEST_REQUIRE=$(NETNS_REQUIRE) \
		$(GO) test -count=1 -v -timeout 20m $(GOTESTFLAGS) ./hack/netns
