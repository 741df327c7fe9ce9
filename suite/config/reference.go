package config

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// ReferenceProfile is how the entry points that embed the reference ImageService (go test
// ./suite/..., criimage test --embedded) configure it, and so what it declares. One place, so the
// two entry points cannot drift apart.
type ReferenceProfile struct {
	ProgressTimeout time.Duration
	StreamBatchSize int
	RuntimeHandler  string // a second handler (mapped to the default snapshotter)
	Pinned          string
}

// Reference returns the embedded reference's profile.
func Reference() ReferenceProfile {
	return ReferenceProfile{
		ProgressTimeout: 2 * time.Second,
		StreamBatchSize: 3,
		RuntimeHandler:  "criimage-alt",
		Pinned:          "docker.io/library/criimage-pinned:v1",
	}
}

// Features is the --features value the reference declares.
func (p ReferenceProfile) Features() string {
	decl := []string{FeatureSchema1.String(), FeatureRegistryToken.String(), FeatureStreamImages.String(),
		FeatureMirror.String(), FeatureTLS.String(), FeatureTLSHostname.String(), FeatureRestart.String()}
	for f, v := range map[Feature]string{FeatureStreamBatch: strconv.Itoa(p.StreamBatchSize),
		FeatureRuntimeHandler: p.RuntimeHandler, FeatureProgressTimeout: p.ProgressTimeout.String(), FeaturePinned: p.Pinned} {
		decl = append(decl, f.String()+"="+v)
	}
	sort.Strings(decl)
	return strings.Join(decl, ",")
}
