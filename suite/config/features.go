package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Feature names a target may declare with --features. Specs that need an undeclared feature end
// as "unsupported", never silently.
const (
	FeatureSchema1         = "schema1"          // converts and pulls Docker schema 1 images
	FeatureRegistryToken   = "registry-token"   // AuthConfig.registry_token is sent as a bearer token
	FeatureStreamImages    = "stream-images"    // StreamImages is implemented
	FeatureStreamBatch     = "stream-batch"     // =N: StreamImages batch size (allows the >1 batch spec)
	FeatureRuntimeHandler  = "runtime-handler"  // =NAME: a runtime handler the target knows
	FeatureProgressTimeout = "progress-timeout" // =DURATION: the target's pull progress timeout
	FeatureRestart         = "restart"          // =CMD: shell command that restarts the target
	FeatureMirror          = "mirror"           // docker.io is mirrored to the fixture registry (via --registry-config-dir)
	FeatureTLSHostname     = "tls-hostname"     // the target resolves the TLS host name to the fixture registry
	FeatureTLS             = "tls"              // the target trusts the fixture CA for the TLS listener (via --registry-config-dir)
	FeaturePinned          = "pinned"           // =REF: a reference the target is configured to pin
)

// Usage returns how to declare name on the command line ("runtime-handler=NAME").
func Usage(name string) string {
	for _, k := range KnownFeatures() {
		if k == name || strings.HasPrefix(k, name+"=") {
			return k
		}
	}
	return name
}

// KnownFeatures lists every feature name the suite understands.
func KnownFeatures() []string {
	return []string{FeatureSchema1, FeatureRegistryToken, FeatureStreamImages, FeatureStreamBatch + "=N",
		FeatureRuntimeHandler + "=NAME", FeatureProgressTimeout + "=DURATION", FeatureRestart + "=CMD",
		FeatureMirror, FeatureTLSHostname, FeatureTLS, FeaturePinned + "=REF"}
}

var known = map[string]bool{
	FeatureSchema1: true, FeatureRegistryToken: true, FeatureStreamImages: true, FeatureStreamBatch: true,
	FeatureRuntimeHandler: true, FeatureProgressTimeout: true, FeatureRestart: true, FeatureMirror: true,
	FeatureTLSHostname: true, FeatureTLS: true, FeaturePinned: true,
}

// Features is the set of declared features; a feature may carry values (pinned=REF twice).
// It implements flag.Value: "a,b=1" adds a and b=1; the flag may repeat.
type Features struct {
	m map[string][]string
}

// Set parses a comma-separated list. A restart command may contain commas only if it is the
// last item ("restart=systemctl restart containerd" is fine).
func (f *Features) Set(s string) error {
	if f.m == nil {
		f.m = map[string][]string{}
	}
	for s != "" {
		var item string
		if strings.HasPrefix(strings.TrimSpace(s), FeatureRestart+"=") {
			item, s = s, ""
		} else {
			item, s, _ = strings.Cut(s, ",")
		}
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, hasValue := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !known[name] {
			return fmt.Errorf("unknown feature %q (known: %s)", name, strings.Join(KnownFeatures(), ", "))
		}
		if hasValue {
			f.m[name] = append(f.m[name], strings.TrimSpace(value))
		} else if _, ok := f.m[name]; !ok {
			f.m[name] = nil
		}
	}
	return nil
}

// String renders the set in a stable order.
func (f *Features) String() string {
	if f == nil || len(f.m) == 0 {
		return ""
	}
	var out []string
	for name, vals := range f.m {
		if len(vals) == 0 {
			out = append(out, name)
		}
		for _, v := range vals {
			out = append(out, name+"="+v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Has reports whether name was declared (with or without a value).
func (f *Features) Has(name string) bool {
	_, ok := f.m[name]
	return ok
}

// Value returns the first value of name.
func (f *Features) Value(name string) (string, bool) {
	vals := f.m[name]
	if len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

// Values returns every value of name.
func (f *Features) Values(name string) []string { return append([]string(nil), f.m[name]...) }

// Duration parses the value of a duration feature (progress-timeout).
func (f *Features) Duration(name string) (time.Duration, bool, error) {
	v, ok := f.Value(name)
	if !ok {
		return 0, false, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, true, fmt.Errorf("feature %s=%q: want a positive duration", name, v)
	}
	return d, true, nil
}

// DurationCheck is one parsed duration feature.
type DurationCheck struct {
	Name string
	Err  error
}

// Durations checks every duration-valued feature.
func (f *Features) Durations() []DurationCheck {
	_, _, err := f.Duration(FeatureProgressTimeout)
	return []DurationCheck{{FeatureProgressTimeout, err}}
}

// Int parses an integer feature value (stream-batch); 0 if absent or malformed.
func (f *Features) Int(name string) int {
	v, _ := f.Value(name)
	n, _ := strconv.Atoi(v)
	return n
}
