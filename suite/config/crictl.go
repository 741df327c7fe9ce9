package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"sigs.k8s.io/yaml"
)

// DefaultCrictlConfig is where crictl and critest read their endpoints from.
const DefaultCrictlConfig = "/etc/crictl.yaml"

// crictlConfig is the part of crictl's config file the suite reads (cri-tools
// cmd/crictl/config.go: runtime-endpoint, image-endpoint; the rest — timeout, debug,
// pull-image-on-create, disable-pull-on-run — is crictl's own business).
type crictlConfig struct {
	RuntimeEndpoint string `json:"runtime-endpoint"`
	ImageEndpoint   string `json:"image-endpoint"`
}

// CrictlEndpoints reads the image and runtime endpoints from a crictl config file, as crictl
// does: an image endpoint left empty is the runtime endpoint. path "" means CRI_CONFIG_FILE (the
// variable crictl honours) or else /etc/crictl.yaml, and then a missing file is not an error
// (found is false); a path given explicitly must exist.
func CrictlEndpoints(path string) (image, runtime string, found bool, err error) {
	explicit := path != ""
	if !explicit {
		path = os.Getenv("CRI_CONFIG_FILE")
		explicit = path != ""
	}
	if path == "" {
		path = DefaultCrictlConfig
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return "", "", false, nil
		}
		return "", "", false, fmt.Errorf("crictl config: %w", err)
	}
	var c crictlConfig
	// Not strict: crictl's file has keys the suite does not read.
	if err := yaml.Unmarshal(b, &c); err != nil {
		return "", "", false, fmt.Errorf("crictl config %s: %w", path, err)
	}
	image, runtime = c.ImageEndpoint, c.RuntimeEndpoint
	if image == "" {
		image = runtime
	}
	if image == "" {
		return "", "", false, fmt.Errorf("crictl config %s: neither image-endpoint nor runtime-endpoint is set", path)
	}
	return image, runtime, true, nil
}
