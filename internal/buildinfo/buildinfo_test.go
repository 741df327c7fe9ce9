package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/criimage/criimage", Version: "v0.1.0"},
		Deps: []*debug.Module{
			{Path: CRIAPIModule, Version: "v0.37.2"},
			{Path: ContainerdModule, Version: "v2.4.2"},
			{Path: "example.com/other", Version: "v1.0.0"},
		},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "f3b59ed"}, {Key: "vcs.time", Value: "2026-12-03T17:35:37Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := FromBuildInfo(bi)
	want := Info{Module: "github.com/criimage/criimage", Version: "v0.1.0", Revision: "f3b59ed",
		Time: "2026-12-03T17:35:37Z", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm64",
		CRIAPI: "v0.37.2", Containerd: "v2.4.2"}
	if got != want {
		t.Errorf("FromBuildInfo:\n got %+v\nwant %+v", got, want)
	}
}

func TestFromBuildInfoDevel(t *testing.T) {
	got := FromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8"})
	if got.Version != "(devel)" || got.Modified || got.Revision != "" {
		t.Errorf("FromBuildInfo of an unstamped build = %+v, want version (devel), no VCS fields", got)
	}
}

// TestRead: a test binary has build information (this package's tests link no cri-api; the
// command's tests check that field).
func TestRead(t *testing.T) {
	got := Read()
	if got.Module != "github.com/criimage/criimage" || got.GoVersion == "" || got.Platform == "" {
		t.Errorf("Read() = %+v: want the module path, the Go version and the platform", got)
	}
}
