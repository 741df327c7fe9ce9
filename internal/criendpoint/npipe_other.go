//go:build !windows

package criendpoint

import (
	"context"
	"fmt"
	"net"
	"runtime"
)

// dialPipe refuses: named pipes exist on Windows only.
func dialPipe(_ context.Context, path string) (net.Conn, error) {
	return nil, fmt.Errorf("named pipe %s: npipe endpoints need Windows, this is %s", path, runtime.GOOS)
}
