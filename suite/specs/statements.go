package specs

// Statement is one normative statement of the CRI ImageService (api.proto of k8s.io/cri-api
// v0.37, IS-xx) or a client convention around it (CV-xx). Specs name the statements they check in
// Meta.Refs; docs/traceability.md is generated from both (go test ./suite/specs -update).
type Statement struct {
	ID      string
	Where   string // api.proto line(s) or source location
	Summary string
	// Untestable is the reason no spec can check it through the ImageService alone ("" = testable).
	Untestable string
}

// Statements lists every statement the suite traces.
func Statements() []Statement {
	const needsRuntime = "needs the RuntimeService (containers, image mounts); the suite targets ImageService-only endpoints"
	return []Statement{
		{"IS-01", "api.proto:231-232", "ListImages lists existing images", ""},
		{"IS-02", "api.proto:234-236", "StreamImages streams results in lists of at least one item", ""},
		{"IS-03", "api.proto:237-238", "each item in exactly one StreamImages response, no duplicates", ""},
		{"IS-04", "api.proto:238-239", "StreamImages ends with EOF after all items", ""},
		{"IS-05", "api.proto:239-242", "kubelet enforces a timeout on the whole stream and discards partial results",
			"a statement about the client (kubelet), not the runtime"},
		{"IS-06", "api.proto:246-248", "ImageStatus of an absent image returns Image = nil", ""},
		{"IS-07", "api.proto:250-251", "PullImage pulls an image with authentication config", ""},
		{"IS-08", "api.proto:253-254", "RemoveImage is idempotent, no error if already removed", ""},
		{"IS-09", "api.proto:255-258", "removing by a single tag removes all its tags, across repositories", ""},
		{"IS-10", "api.proto:259", "after RemoveImage, ListImages, ImageStatus, ImageFsInfo no longer return the image", ""},
		{"IS-11", "api.proto:260-261", "resources may be cleaned up asynchronously after RemoveImage", ""},
		{"IS-12", "api.proto:263-264", "ImageFsInfo describes the filesystem that stores images", ""},
		{"IS-13", "api.proto:957-958", "ImageSpec.image may be an image ID or digest", ""},
		{"IS-14", "api.proto:959-962", "ImageSpec.annotations may target images in multi-arch images", ""},
		{"IS-15", "api.proto:963-965", "ImageSpec.user_specified_image only set if available in the RPC context",
			"set by kubelet on container creation; the ImageService has no observable use of it"},
		{"IS-16", "api.proto:966-968", "an unknown runtime_handler should be rejected; empty selects the default", ""},
		{"IS-17", "api.proto:970-972", "ImageSpec.image_ref similar to containerStatuses[].imageID", needsRuntime},
		{"IS-18", "api.proto:363-369", "image mounts are read-only; runtimes mount the image as required", needsRuntime},
		{"IS-19", "api.proto:372-375", "a missing image_sub_path fails the mount", needsRuntime},
		{"IS-20", "api.proto:1475-1476", "Container.image_ref is the digested reference in use", needsRuntime},
		{"IS-21", "api.proto:1488-1493", "Container.image_id MUST match PullImageResponse.image_ref", needsRuntime},
		{"IS-22", "api.proto:1536-1537", "ContainerStatus.image_ref is the digested reference in use", needsRuntime},
		{"IS-23", "api.proto:1557-1562", "ContainerStatus.image_id MUST match PullImageResponse.image_ref", needsRuntime},
		{"IS-24", "api.proto:1703-1706", "ImageFilter.image: spec of the image (semantics unspecified)", ""},
		{"IS-25", "api.proto:1715-1720", "Image.id MUST match PullImageResponse.image_ref", ""},
		{"IS-26", "api.proto:1721-1724", "Image.repo_tags / repo_digests: the names and digests of the image", ""},
		{"IS-27", "api.proto:1725-1726", "Image.size must be > 0", ""},
		{"IS-28", "api.proto:1727-1733", "Image.uid and username are mutually exclusive, from the config User", ""},
		{"IS-29", "api.proto:1734-1735", "Image.spec carries the image annotations", ""},
		{"IS-30", "api.proto:1736-1739", "pinned is a recommendation: RemoveImage of a pinned image must oblige", ""},
		{"IS-31", "api.proto:1760-1761", "ImageStatusRequest.verbose asks for extra information", ""},
		{"IS-32", "api.proto:1767-1771", "ImageStatusResponse.info is JSON, non-empty only when verbose", ""},
		{"IS-33", "api.proto:1774-1785", "AuthConfig fields: username/password, auth, server_address, identity_token, registry_token", ""},
		{"IS-34", "api.proto:1790-1793", "PullImageRequest.auth and sandbox_config", ""},
		{"IS-35", "api.proto:1797-1805", "image_ref is the same value as Image.id for the same image", ""},
		{"IS-36", "api.proto:1806-1809", "image_ref has the stricter (ID) meaning since v1.36", ""},
		{"IS-37", "api.proto:1929-1933", "FilesystemIdentifier identifies the filesystem: mountpoint", ""},
		{"IS-38", "api.proto:1937", "FilesystemUsage.timestamp must be > 0", ""},
		{"IS-39", "api.proto:1941-1948", "used_bytes / inodes_used of the image filesystem", ""},
		{"IS-40", "api.proto:1953", "WindowsFilesystemUsage.timestamp must be > 0",
			"Windows only; the suite runs against Linux targets"},
		{"IS-41", "api.proto:1964-1970", "ImageFsInfoResponse.image_filesystems; container_filesystems optional", ""},
		{"CV-01", "cri-api errors.go:28", "RegistryUnavailable prefix on registry connection errors", ""},
		{"CV-02", "cri-api errors.go:31", "SignatureValidationFailed prefix on signature errors",
			"the fixtures carry no signature policy; no target-agnostic way to make a runtime validate signatures"},
		{"CV-03", "cri-client remote_image.go:306", "ImageStatus Image needs a non-empty id and size != 0", ""},
		{"CV-04", "cri-client remote_image.go:349", "PullImage must return a non-empty image_ref", ""},
		{"CV-05", "cri-client remote_image.go:342", "codes.Unknown errors are flattened to plain messages", ""},
		{"CV-06", "cri-client remote_image.go:272", "StreamImages Unimplemented → ListImages fallback", ""},
		{"CV-07", "cri-client remote_runtime.go:255, remote_image.go:220", "Version and ImageFsInfo as connect-time probes", ""},
		{"CV-08", "kubelet image_manager.go:424-439", "kubelet adds a default tag but does not normalize hosts", ""},
	}
}
