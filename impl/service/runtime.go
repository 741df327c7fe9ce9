package service

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RuntimeName is what RuntimeService.Version reports.
const RuntimeName = "criimage"

// Runtime is the part of RuntimeService that clients probe at connect time (crictl, critest,
// kubelet): Version and Status. Everything else is Unimplemented.
type Runtime struct {
	runtime.UnimplementedRuntimeServiceServer
	version string
}

// Runtime returns the RuntimeService half of the service.
func (s *Service) Runtime() *Runtime { return &Runtime{version: s.version} }

// Version reports all four fields.
func (r *Runtime) Version(context.Context, *runtime.VersionRequest) (*runtime.VersionResponse, error) {
	return &runtime.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       RuntimeName,
		RuntimeVersion:    r.version,
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports the runtime and network ready: criimage runs no containers, but clients refuse
// a runtime that is not ready.
func (r *Runtime) Status(context.Context, *runtime.StatusRequest) (*runtime.StatusResponse, error) {
	return &runtime.StatusResponse{Status: &runtime.RuntimeStatus{Conditions: []*runtime.RuntimeCondition{
		{Type: runtime.RuntimeReady, Status: true},
		{Type: runtime.NetworkReady, Status: true},
	}}}, nil
}
