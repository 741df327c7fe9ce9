package auth_test

import (
	"os"
	"testing"

	"github.com/containerd/log"
)

func TestMain(m *testing.M) {
	_ = log.SetLevel("error") // containerd's resolver and content store log at info/warning
	os.Exit(m.Run())
}
