package harness

import (
	"fmt"
	"strings"

	"github.com/criimage/criimage/fixtures"
	"github.com/criimage/criimage/internal/buildinfo"
)

// DescribeBuild is the line a report carries about the suite that ran: criimage's version and
// revision, and the fixture catalog's fingerprint (equal fingerprints, equal fixture bytes), so
// that two reports can be shown to come from the same suite.
func DescribeBuild() string {
	in := buildinfo.Read()
	rev := in.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if in.Modified && !strings.HasSuffix(in.Version, "+dirty") {
		rev += "+modified"
	}
	fp, err := fixtures.Fingerprint()
	fingerprint := fp.String()
	if err != nil {
		fingerprint = fmt.Sprintf("(unknown: %v)", err)
	}
	s := fmt.Sprintf("criimage: %s", in.Version)
	if rev != "" {
		s += " (" + rev + ")"
	}
	return fmt.Sprintf("%s, %s, cri-api %s\nfixtures: %s\n", s, in.GoVersion, in.CRIAPI, fingerprint)
}
