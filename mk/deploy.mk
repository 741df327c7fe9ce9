# criimage in a cluster (owner: deploy/). Included by the top-level Makefile.
.PHONY: deploy-check

## deploy-check: deploy/'s manifests (Sonobuoy plugin, DaemonSet, Job, profile ConfigMap,
## namespace) decoded strictly into Kubernetes' API types and checked against criimage test's own
## flags, the suite's profile loader and docs/install.md's image (docs/cluster.md).
deploy-check:
	$(GO) test -count=1 $(GOTESTFLAGS) ./deploy/...
