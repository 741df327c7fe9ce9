package specs

import (
	"fmt"
	"strconv"

	"github.com/opencontainers/go-digest"
)

func itoa(n int) string { return strconv.Itoa(n) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

var _ = fmt.Sprint

type digestT = digest.Digest
