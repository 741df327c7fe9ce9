package specs

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // gomega DSL

	"github.com/criimage/criimage/suite/framework"
	"github.com/criimage/criimage/suite/harness"
)

// metadataAllowance is how far above its baseline ImageFsInfo may stay after everything an
// image brought is gone: metadata databases grow and do not shrink. Specs that check a return to
// baseline use content several times larger.
const metadataAllowance = 192 << 10

// fsSpecs: ImageFsInfo.
func fsSpecs(su *framework.Tree) {
	Describe("ImageFsInfo", func() {
		su.Spec("FS-001", "ImageFsInfo reports a timestamp > 0 and a mountpoint for each image filesystem",
			framework.Meta{Refs: []string{"IS-12", "IS-37", "IS-38", "IS-41"}}, func(ctx context.Context, s *harness.Spec) {
				before := time.Now().Add(-time.Minute).UnixNano()
				resp := s.FsInfo(ctx)
				Expect(resp.GetImageFilesystems()).NotTo(BeEmpty())
				for i, fs := range resp.GetImageFilesystems() {
					Expect(fs.GetTimestamp()).To(BeNumerically(">", 0), "image_filesystems[%d].timestamp (IS-38)", i)
					Expect(fs.GetTimestamp()).To(BeNumerically(">", before), "image_filesystems[%d].timestamp is not recent", i)
					Expect(fs.GetFsId().GetMountpoint()).NotTo(BeEmpty(), "image_filesystems[%d].fs_id.mountpoint (IS-37)", i)
					Expect(fs.GetUsedBytes()).NotTo(BeNil(), "image_filesystems[%d].used_bytes (IS-39)", i)
				}
				for i, fs := range resp.GetContainerFilesystems() {
					Expect(fs.GetTimestamp()).To(BeNumerically(">", 0), "container_filesystems[%d].timestamp", i)
				}
			})

		su.Spec("FS-002", "ImageFsInfo usage rises after a pull and returns to the baseline after RemoveImage",
			framework.Meta{Serial: true, Refs: []string{"IS-10", "IS-11", "IS-12", "IS-39"}},
			func(ctx context.Context, s *harness.Spec) {
				// The baseline must be a figure the target computed after the specs before this
				// one. containerd reports the usage its snapshot syncer collected (every 10 s),
				// timestamped with that collection: a baseline read right after another spec's
				// RemoveImage still counted the removed image, and this pull then seemed to lower
				// usage (1 of 9 CI runs). refreshedUsage waits, on the target's own clock, for a
				// figure newer than one read now.
				img := s.Unique(3, 256<<10) // incompressible: 768 KiB of layers
				repo := s.Push(img, "anon", "v1")
				ref := s.Ref(repo, "v1")
				base := refreshedUsage(ctx, s, "the specs before this one")
				id := s.MustPull(ctx, ref)
				used := func() uint64 { return s.FsInfo(ctx).GetImageFilesystems()[0].GetUsedBytes().GetValue() }
				Eventually(used).WithTimeout(s.Env.Wait()).WithPolling(50*time.Millisecond).
					Should(BeNumerically(">", base), "used_bytes after pulling %d bytes of layers", img.Size)
				Expect(s.Remove(ctx, id)).To(Succeed())
				Eventually(used).WithTimeout(s.Env.Wait()).WithPolling(50*time.Millisecond).
					Should(BeNumerically("<=", base+metadataAllowance), "used_bytes after RemoveImage (IS-10, cleanup may be asynchronous: IS-11)")
			})
	})
}

// refreshedUsage returns the first image filesystem's used_bytes from a figure the target
// computed after what: one whose timestamp is newer than that of a figure read now. A target that
// computes usage per call answers it at once; one that collects it periodically within a period.
// (Newer is not "complete": containerd stamps an empty collection with the time of the call, so
// a rise after a pull is still awaited with Eventually.)
func refreshedUsage(ctx context.Context, s *harness.Spec, what string) uint64 {
	GinkgoHelper()
	seen := s.FsInfo(ctx).GetImageFilesystems()[0].GetTimestamp()
	var used uint64
	Eventually(func() int64 {
		fs := s.FsInfo(ctx).GetImageFilesystems()[0]
		used = fs.GetUsedBytes().GetValue()
		return fs.GetTimestamp()
	}).WithTimeout(s.Env.Wait()).WithPolling(50*time.Millisecond).Should(BeNumerically(">", seen),
		"ImageFsInfo never computed its figures again after %s (timestamp stayed %d)", what, seen)
	return used
}
