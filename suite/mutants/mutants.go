// Package mutants is mutation testing for the conformance suite: a gRPC proxy in front of a
// correct CRI ImageService (the reference) that injects one named fault at a time, and a runner
// that runs the suite against each mutant and reports which spec killed it. A mutant the suite
// does not fail is a gap in the suite.
//
// The proxy serves runtime.v1 ImageService plus RuntimeService Version/Status on its own unix
// socket and forwards to the upstream endpoint; see Start. The catalog of faults is Catalog.
package mutants

import (
	"fmt"
	"slices"
)

// Mutant names. None is the identity proxy: it must pass everything the reference passes.
const (
	None = "none"

	AuthDropAll           = "auth-drop-all"
	AuthDropRegistryToken = "auth-drop-registry-token"
	LeakPasswordInError   = "leak-password-in-error"
	PullDetached          = "pull-detached"
	RuntimeHandlerIgnored = "runtime-handler-ignored"
	FailedPullVisible     = "failed-pull-visible"
	AuthServerAddrDropped = "auth-server-address-dropped"
	PullConcurrentFails   = "pull-concurrent-fails"
	RefDigestDropped      = "ref-digest-dropped"
	PullCachedTag         = "pull-cached-tag"
	PullErrorCodeUnknown  = "pull-error-code-unknown"

	RefManifestDigest = "ref-manifest-digest"
	RefNoSHA256Prefix = "ref-no-sha256-prefix"

	ListEmpty      = "list-empty"
	ListOmitNewest = "list-omit-newest"
	ListDuplicate  = "list-duplicate"

	StreamEmptyBatch = "stream-empty-batch"
	StreamDuplicate  = "stream-duplicate"
	StreamNoEOF      = "stream-no-eof"

	RemoveUntag          = "remove-untag"
	RemoveNoop           = "remove-noop"
	RemoveAbsentNotFound = "remove-absent-notfound"

	StatusAbsentNotFound   = "status-absent-notfound"
	StatusInfoNotVerbose   = "status-info-not-verbose"
	StatusInfoInvalidJSON  = "status-info-invalid-json"
	StatusPrefixWrongImage = "status-prefix-wrong-image"
	StatusEmptyMatches     = "status-empty-matches"
	StatusTagCaseFold      = "status-tag-case-fold"

	SizeZero       = "size-zero"
	UIDAndUsername = "uid-and-username"
	TagsMissing    = "tags-missing"
	DigestsMissing = "digests-missing"
	PinnedIgnored  = "pinned-ignored"

	RepullRemovesFirst    = "repull-removes-first"
	PullsSerialized       = "pulls-serialized"
	PinnedAll             = "pinned-all"
	ListSizeDiffers       = "list-size-differs"
	StatusTruncatedNoTags = "status-truncated-no-tags"
	RemoveTruncatedNoop   = "remove-truncated-noop"
	DigestPullTagged      = "digest-pull-tagged-latest"
	ListFilterIgnored     = "list-filter-ignored"
	PullAuthAsNotFound    = "pull-auth-as-notfound"
	PullRetries429        = "pull-retries-429-forever"
	StreamEmptyMessage    = "stream-empty-message-when-empty"
	StreamCancelWedges    = "stream-cancel-wedges"
	PullIDAsDockerRef     = "pull-id-as-docker-ref"
	TagMoveDropsOld       = "tag-move-drops-old"
	RefHostLowercased     = "ref-host-lowercased"
	AuthDockerAliases     = "auth-docker-aliases-unknown"

	FsTimestampZero = "fsinfo-timestamp-zero"
	FsUsedConstant  = "fsinfo-used-constant"
	FsNoMountpoint  = "fsinfo-no-mountpoint"
)

// Mutant is one injectable fault.
type Mutant struct {
	Name string
	// Doc says what the mutant gets wrong and which statement it breaks.
	Doc string
	// Killers are the spec IDs expected to kill it; the CI subset runs only these.
	Killers []string
	// CI marks the mutants of the fast subset (make mutants-ci).
	CI bool
}

// Catalog returns every mutant (a fresh slice; None is not in it).
func Catalog() []Mutant {
	return []Mutant{
		{AuthDropAll, "PullImage drops every AuthConfig field (IS-07, IS-33)", []string{"AUTH-002"}, true},
		{AuthDropRegistryToken, "PullImage drops only AuthConfig.registry_token (IS-33)", []string{"AUTH-007"}, true},
		{LeakPasswordInError, "a failed PullImage appends the request's secret (password, auth, tokens) to its error message", []string{"AUTH-008", "LEAK-001"}, true},
		{PullDetached, "PullImage runs upstream on a context detached from the client's: a client cancel never reaches the registry", []string{"CANCEL-001"}, true},
		{RuntimeHandlerIgnored, "ImageSpec.runtime_handler is stripped, so an unknown handler is accepted (IS-16)", []string{"RH-001"}, false},
		{FailedPullVisible, "a failed PullImage leaves a fabricated image for the reference in ImageStatus and ListImages", []string{"AUTH-001", "FAIL-001"}, true},
		{AuthServerAddrDropped, "PullImage drops AuthConfig.server_address, so credentials scoped to another registry are sent to this one (IS-33)", []string{"AUTH-011"}, true},
		{PullConcurrentFails, "a PullImage of a reference another PullImage is already pulling fails with AlreadyExists (IS-35)", []string{"RACE-001"}, true},
		{RefDigestDropped, "PullImage of NAME:TAG@DIGEST pulls NAME:TAG, ignoring the digest (IS-26)", []string{"REF-008"}, false},
		{PullCachedTag, "PullImage of a tag already present answers the stored image without asking the registry, so a moved tag is never seen (IS-26, IS-35)", []string{"RACE-006"}, true},
		{PullErrorCodeUnknown, "every PullImage error is codes.Unknown (a malformed reference is not InvalidArgument)", []string{"REF-006"}, false},
		{RefManifestDigest, "image_ref is the manifest digest, not the image ID that Image.id carries (IS-25, IS-35)", []string{"PULL-001"}, true},
		{RefNoSHA256Prefix, "image_ref is the ID without its sha256: prefix while Image.id keeps it (IS-25)", []string{"PULL-001"}, false},
		{ListEmpty, "ListImages returns no images (IS-01)", []string{"PULL-001", "LIST-001"}, true},
		{ListOmitNewest, "ListImages omits the most recently pulled image (IS-01)", []string{"PULL-001", "LIST-001"}, true},
		{ListDuplicate, "ListImages lists every image twice (IS-01)", []string{"PULL-005", "LIST-002"}, false},
		{StreamEmptyBatch, "StreamImages sends an empty message before the images (IS-02)", []string{"LIST-003"}, true},
		{StreamDuplicate, "StreamImages sends the first image again in a last message (IS-03)", []string{"LIST-003"}, true},
		{StreamNoEOF, "StreamImages never closes the stream after the last item; it holds it until the client gives up (IS-04)", []string{"LIST-003"}, true},
		{RemoveUntag, "RemoveImage by tag removes only that tag; the image keeps its other tags (IS-09)", []string{"RM-001"}, true},
		{RemoveNoop, "RemoveImage answers OK and removes nothing (IS-10)", []string{"PULL-006", "RM-004"}, false},
		{RemoveAbsentNotFound, "RemoveImage of an absent image answers NotFound (IS-08)", []string{"RM-002"}, true},
		{StatusAbsentNotFound, "ImageStatus of an absent image answers NotFound instead of a nil image (IS-06)", []string{"REF-004"}, true},
		{StatusInfoNotVerbose, "ImageStatus returns info even when verbose is false (IS-32)", []string{"STATUS-001"}, true},
		{StatusInfoInvalidJSON, "verbose ImageStatus info values are not JSON (IS-32)", []string{"STATUS-001"}, false},
		{StatusPrefixWrongImage, "ImageStatus by a truncated ID (4..63 hex) returns another image (IS-25)", []string{"REF-013", "RM-008"}, true},
		{StatusEmptyMatches, "ImageStatus(\"\") returns an image (the first listed) (IS-06)", []string{"REF-009"}, true},
		{StatusTagCaseFold, "ImageStatus matches tags case-insensitively (IS-26)", []string{"REF-007"}, false},
		{SizeZero, "Image.size is 0 in ImageStatus, ListImages and StreamImages (IS-27, CV-03)", []string{"PULL-003"}, true},
		{UIDAndUsername, "Image.uid and Image.username are both set whenever one is (IS-28)", []string{"STATUS-003"}, true},
		{TagsMissing, "Image.repo_tags is empty (IS-26)", []string{"PULL-002", "LIST-001"}, false},
		{DigestsMissing, "Image.repo_digests is empty (IS-26)", []string{"PULL-002"}, false},
		{PinnedIgnored, "Image.pinned is always false (IS-30)", []string{"STATUS-004"}, true},
		{RepullRemovesFirst, "PullImage of a reference already present removes that image first, so a re-pull that fails leaves the node without it (containerd#9224)", []string{"FAIL-009", "PULL-009"}, true},
		{PullsSerialized, "one PullImage at a time: a pull waits for every pull before it, so one slow registry stalls every other pull", []string{"RACE-009"}, true},
		{PinnedAll, "Image.pinned is true for every image, which turns kubelet's image GC off (IS-30)", []string{"STATUS-006"}, true},
		{ListSizeDiffers, "ListImages and StreamImages report a size one byte larger than ImageStatus does (IS-27, IS-35)", []string{"PULL-001"}, true},
		{StatusTruncatedNoTags, "ImageStatus by a truncated ID (4..63 hex) answers the right image without its repo_tags (IS-26)", []string{"PULL-001"}, true},
		{RemoveTruncatedNoop, "RemoveImage of a truncated ID answers OK and removes nothing, while ImageStatus resolves that truncated ID (IS-10, IS-25)", []string{"RM-009"}, true},
		{DigestPullTagged, "an image known by repository digest only also reports NAME:latest in repo_tags, a tag nobody pulled (IS-26)", []string{"PULL-004"}, true},
		{ListFilterIgnored, "ListImages and StreamImages ignore filter.image and return every image (IS-24)", []string{"LIST-006"}, true},
		{PullAuthAsNotFound, "a pull refused for want of authorization fails with NotFound (\"repository does not exist or may require authorization\"), not Unauthenticated or PermissionDenied", []string{"FAIL-010"}, true},
		{PullRetries429, "a pull refused with 429 Too Many Requests is retried every second until the client gives up: the pull hangs instead of failing", []string{"FAIL-011", "FAIL-010"}, true},
		{StreamEmptyMessage, "StreamImages with nothing to send sends one empty message before EOF (IS-02)", []string{"LIST-008"}, true},
		{StreamCancelWedges, "a StreamImages its client cancels mid-stream leaves the listing wedged: later ListImages and StreamImages fail Unavailable", []string{"LIST-009"}, true},
		{PullIDAsDockerRef, "PullImage of a bare image ID sha256:<hex> pulls docker.io/library/sha256:<hex>, as reference.ParseDockerRef reads it", []string{"REF-015"}, true},
		{TagMoveDropsOld, "a pull that moves a tag to a new image removes the old image with every other name it had (IS-26)", []string{"PULL-010"}, true},
		{RefHostLowercased, "PullImage lower-cases the registry host of the reference, so the image is not known by the name kubelet pulled (IS-26, CV-08)", []string{"REF-016"}, true},
		{AuthDockerAliases, "a server_address naming Docker Hub (https://index.docker.io/v1/, index.docker.io, registry-1.docker.io, docker.io) selects no credentials, as if it named an unknown host (IS-33)", []string{"AUTH-024"}, true},
		{FsTimestampZero, "ImageFsInfo timestamps are 0 (IS-38)", []string{"FS-001"}, true},
		{FsUsedConstant, "ImageFsInfo used_bytes never changes from its first answer (IS-39, IS-10)", []string{"FS-002"}, true},
		{FsNoMountpoint, "ImageFsInfo has no fs_id (IS-37)", []string{"FS-001"}, false},
	}
}

// Lookup returns the named mutant; None is valid and has no killers.
func Lookup(name string) (Mutant, error) {
	if name == None {
		return Mutant{Name: None, Doc: "identity proxy"}, nil
	}
	i := slices.IndexFunc(Catalog(), func(m Mutant) bool { return m.Name == name })
	if i < 0 {
		return Mutant{}, fmt.Errorf("mutants: unknown mutant %q", name)
	}
	return Catalog()[i], nil
}
