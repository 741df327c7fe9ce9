// Package buildinfo picks, from what the Go toolchain stamped into the running binary
// (runtime/debug.ReadBuildInfo: module version, VCS revision, commit time and dirty flag, Go
// version, dependency versions), the fields criimage reports about itself. Nothing is stamped by
// hand (no -ldflags -X): `go build` in a checkout records the VCS state and, since Go 1.24, a
// version derived from the tag or a pseudo-version; `go install …@vX.Y.Z` records vX.Y.Z.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Module paths whose versions criimage reports.
const (
	CRIAPIModule     = "k8s.io/cri-api"
	ContainerdModule = "github.com/containerd/containerd/v2"
)

// Info is what a binary says about its own build.
type Info struct {
	Module     string `json:"module"`               // main module path
	Version    string `json:"version"`              // module version: a tag, a pseudo-version, or "(devel)"
	Revision   string `json:"revision,omitempty"`   // VCS commit
	Time       string `json:"time,omitempty"`       // commit time (RFC 3339)
	Modified   bool   `json:"modified"`             // built from a tree with uncommitted changes
	GoVersion  string `json:"go"`                   // toolchain, e.g. go1.26.8
	Platform   string `json:"platform"`             // GOOS/GOARCH of the binary
	CRIAPI     string `json:"criAPI,omitempty"`     // k8s.io/cri-api version the suite speaks
	Containerd string `json:"containerd,omitempty"` // containerd/v2 version the reference is built on
}

// Read returns the running binary's Info. Without build information (rare: a binary built
// without module support) it returns the Go version and platform and "(unknown)" as the version.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(unknown)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo picks Info's fields from bi.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{
		Module:    bi.Main.Path,
		Version:   bi.Main.Version,
		GoVersion: bi.GoVersion,
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		in.Platform = goos + "/" + goarch
	}
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version
		}
		switch d.Path {
		case CRIAPIModule:
			in.CRIAPI = v
		case ContainerdModule:
			in.Containerd = v
		}
	}
	return in
}
