package config

import (
	"strconv"
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
	return "schema1,registry-token,stream-images,mirror,tls,tls-hostname,restart," +
		"stream-batch=" + strconv.Itoa(p.StreamBatchSize) + ",runtime-handler=" + p.RuntimeHandler +
		",progress-timeout=" + p.ProgressTimeout.String() + ",pinned=" + p.Pinned
}
