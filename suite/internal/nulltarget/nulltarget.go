// Package nulltarget is an ImageService that stores nothing: PullImage answers a constant
// image_ref without contacting any registry, ImageStatus always says absent, ListImages and
// StreamImages are empty, RemoveImage and ImageFsInfo succeed. It is the suite's first mutant: a
// conformance spec that passes against it checks nothing (critest has five such specs).
package nulltarget

import (
	"context"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageRef is what every PullImage returns.
var imageRef = "sha256:" + strings.Repeat("0", 64)

// Server is the null ImageService.
type Server struct {
	runtime.UnimplementedImageServiceServer
}

// PullImage pretends to pull.
func (Server) PullImage(context.Context, *runtime.PullImageRequest) (*runtime.PullImageResponse, error) {
	return &runtime.PullImageResponse{ImageRef: imageRef}, nil
}

// ImageStatus finds nothing.
func (Server) ImageStatus(context.Context, *runtime.ImageStatusRequest) (*runtime.ImageStatusResponse, error) {
	return &runtime.ImageStatusResponse{}, nil
}

// ListImages lists nothing.
func (Server) ListImages(context.Context, *runtime.ListImagesRequest) (*runtime.ListImagesResponse, error) {
	return &runtime.ListImagesResponse{}, nil
}

// StreamImages streams nothing.
func (Server) StreamImages(*runtime.StreamImagesRequest, grpc.ServerStreamingServer[runtime.StreamImagesResponse]) error {
	return nil
}

// RemoveImage removes nothing.
func (Server) RemoveImage(context.Context, *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	return &runtime.RemoveImageResponse{}, nil
}

// ImageFsInfo reports an empty filesystem.
func (Server) ImageFsInfo(context.Context, *runtime.ImageFsInfoRequest) (*runtime.ImageFsInfoResponse, error) {
	return &runtime.ImageFsInfoResponse{ImageFilesystems: []*runtime.FilesystemUsage{{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtime.FilesystemIdentifier{Mountpoint: "/nulltarget"},
		UsedBytes:  &runtime.UInt64Value{},
		InodesUsed: &runtime.UInt64Value{},
	}}}, nil
}

// Serve serves the null ImageService on the unix socket path until the returned stop is called.
func Serve(path string) (stop func(), err error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	runtime.RegisterImageServiceServer(srv, Server{})
	go func() { _ = srv.Serve(ln) }()
	return srv.Stop, nil
}
