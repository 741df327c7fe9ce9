package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/criimage/criimage/internal/criendpoint"
)

// ReferenceName is the reference's column in the table; the ratio columns divide its medians
// by every other runtime's.
const ReferenceName = "reference"

// Target is one runtime under measurement: a CRI image endpoint and, when known, the process on
// this machine that serves it (its peak RSS is measured, and the cold-pull cases wait until it
// is idle). The driver's daemons are targets; so is any endpoint `criimage bench` is given.
type Target struct {
	Name     string // its column in the table: "reference", "containerd 2.4.2", …
	Endpoint string // unix://, tcp:// or npipe:// (internal/criendpoint)
	PID      int    // the serving process; 0 = unknown (no peak RSS, fixed idle waits)
	Images   runtime.ImageServiceClient

	conn *grpc.ClientConn
}

// DialTarget connects to endpoint. pid is the serving process (0 = unknown).
func DialTarget(name, endpoint string, pid int) (*Target, error) {
	// The list cases read 10,000 images in one ListImages answer: allow more than kubelet's 16 MiB.
	conn, err := criendpoint.Dial(endpoint, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	return &Target{Name: name, Endpoint: endpoint, PID: pid, Images: runtime.NewImageServiceClient(conn), conn: conn}, nil
}

// Close closes the connection (the runtime goes on).
func (t *Target) Close() error {
	if t == nil || t.conn == nil {
		return nil
	}
	return t.conn.Close()
}

// runtimeName is "<RuntimeName> <RuntimeVersion>" from the endpoint's RuntimeService.Version
// (containerd and criimage serve answer it on the image endpoint too), "" if it has none.
func (t *Target) runtimeName(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := runtime.NewRuntimeServiceClient(t.conn).Version(ctx, &runtime.VersionRequest{})
	if err != nil || v.GetRuntimeName() == "" {
		return ""
	}
	return strings.TrimSpace(v.GetRuntimeName() + " " + v.GetRuntimeVersion())
}

// errNoPID is why a target without a known process has no peak RSS.
var errNoPID = errors.New("the serving process is unknown (a unix socket on this machine, or -pid)")

// ResetPeakRSS resets the serving process's VmHWM (clear_refs 5, Linux ≥ 4.0).
func (t *Target) ResetPeakRSS() error {
	if t.PID <= 0 {
		return errNoPID
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", t.PID), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS of pid %d: %w", t.PID, err)
	}
	return nil
}

// PeakRSS reads the serving process's VmHWM in bytes.
func (t *Target) PeakRSS() (int64, error) {
	if t.PID <= 0 {
		return 0, errNoPID
	}
	return procStatus(t.PID, "VmHWM:")
}

func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(ln, key) {
			f := strings.Fields(ln)
			if len(f) < 2 {
				break
			}
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// settle waits (at most 10 s) until t's process has used no CPU for 200 ms: containerd finishes
// some work after RemoveImage returns (snapshot cleanup, event handling), which would otherwise
// land in the next runtime's timed pull. Without a known process it waits 200 ms. Then it syncs
// the file system once more.
func settle(t *Target) {
	if t.PID <= 0 {
		time.Sleep(200 * time.Millisecond)
		syncFS()
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	last := cpuTicks(t.PID)
	quiet := 0
	for time.Now().Before(deadline) && quiet < 4 {
		time.Sleep(50 * time.Millisecond)
		now := cpuTicks(t.PID)
		if now-last <= 1 {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
	syncFS()
}

// cpuTicks is utime+stime of pid in clock ticks (-1 if unreadable).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	var u, st int64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &st)
	return u + st
}
