//go:build !linux

package bench

import (
	"errors"

	"github.com/criimage/criimage/internal/criendpoint"
)

// errLinuxOnly: the driver's daemons and the runtime's process are Linux matters; elsewhere
// `criimage bench --image-endpoint` measures the calls only (no peak RSS, fixed idle waits).
var errLinuxOnly = errors.New("only on Linux")

func syncFS() {}

func killPID(int) error { return errLinuxOnly }

func peerPID(criendpoint.Endpoint) (int, error) { return 0, errLinuxOnly }

func unmountUnder(string) error { return nil }
