package criendpoint

import (
	"context"
	"net"

	"github.com/Microsoft/go-winio"
)

// dialPipe connects to a Windows named pipe (how kubelet reaches containerd on Windows nodes).
func dialPipe(ctx context.Context, path string) (net.Conn, error) {
	return winio.DialPipeContext(ctx, path)
}
