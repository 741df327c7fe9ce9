package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Feature is a capability a target may declare with --features; a spec that needs one the target
// did not declare ends as "unsupported", never silently. Features are the constants below only:
// a spec names them as Go identifiers, so a misspelt feature does not compile (a string would).
type Feature int

// The features. Their names, values and meanings are declared once, in featureTable.
const (
	FeatureSchema1 Feature = iota + 1
	FeatureRegistryToken
	FeatureStreamImages
	FeatureStreamBatch
	FeatureRuntimeHandler
	FeatureProgressTimeout
	FeatureRestart
	FeatureMirror
	FeatureTLSHostname
	FeatureTLS
	FeaturePinned
)

// featureInfo is one row of the feature table.
type featureInfo struct {
	feature Feature
	name    string // on the command line
	value   string // what a declaration carries after "=" ("" = nothing)
	doc     string
}

// featureTable is every feature, in the order of the constants.
func featureTable() []featureInfo {
	return []featureInfo{
		{FeatureSchema1, "schema1", "", "converts and pulls Docker schema 1 images"},
		{FeatureRegistryToken, "registry-token", "", "AuthConfig.registry_token is sent as a bearer token"},
		{FeatureStreamImages, "stream-images", "", "StreamImages is implemented"},
		{FeatureStreamBatch, "stream-batch", "N", "StreamImages batch size (allows the >1 batch spec)"},
		{FeatureRuntimeHandler, "runtime-handler", "NAME", "a runtime handler the target knows"},
		{FeatureProgressTimeout, "progress-timeout", "DURATION", "the target's pull progress timeout (0: it has none, like containerd's image_pull_progress_timeout = \"0s\")"},
		{FeatureRestart, "restart", "CMD", "shell command that restarts the target"},
		{FeatureMirror, "mirror", "", "docker.io is mirrored to the fixture registry (via --registry-config-dir)"},
		{FeatureTLSHostname, "tls-hostname", "", "the target resolves the TLS host name to the fixture registry"},
		{FeatureTLS, "tls", "", "the target trusts the fixture CA for the TLS listener (via --registry-config-dir)"},
		{FeaturePinned, "pinned", "REF", "a reference the target is configured to pin"},
	}
}

func (f Feature) info() featureInfo {
	t := featureTable()
	if f < 1 || int(f) > len(t) {
		return featureInfo{feature: f, name: fmt.Sprintf("feature(%d)", int(f))}
	}
	return t[f-1]
}

// String is the feature's name on the command line ("runtime-handler").
func (f Feature) String() string { return f.info().name }

// Usage is how to declare f on the command line ("runtime-handler=NAME").
func (f Feature) Usage() string {
	i := f.info()
	if i.value == "" {
		return i.name
	}
	return i.name + "=" + i.value
}

// ParseFeature returns the feature called name.
func ParseFeature(name string) (Feature, bool) {
	for _, i := range featureTable() {
		if i.name == name {
			return i.feature, true
		}
	}
	return 0, false
}

// KnownFeatures lists every feature's usage ("schema1", "stream-batch=N", …).
func KnownFeatures() []string {
	var out []string
	for _, i := range featureTable() {
		out = append(out, i.feature.Usage())
	}
	return out
}

// Features is the set of declared features; a feature may carry values (pinned=REF twice).
// It implements flag.Value: "a,b=1" adds a and b=1; the flag may repeat.
type Features struct {
	m map[Feature][]string
}

// Set parses a comma-separated list. A restart command may contain commas only if it is the
// last item ("restart=systemctl restart containerd" is fine).
func (f *Features) Set(s string) error {
	if f.m == nil {
		f.m = map[Feature][]string{}
	}
	for s != "" {
		var item string
		if strings.HasPrefix(strings.TrimSpace(s), FeatureRestart.String()+"=") {
			item, s = s, ""
		} else {
			item, s, _ = strings.Cut(s, ",")
		}
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, hasValue := strings.Cut(item, "=")
		feature, ok := ParseFeature(strings.TrimSpace(name))
		if !ok {
			return fmt.Errorf("unknown feature %q (known: %s)", strings.TrimSpace(name), strings.Join(KnownFeatures(), ", "))
		}
		if hasValue {
			f.m[feature] = append(f.m[feature], strings.TrimSpace(value))
		} else if _, ok := f.m[feature]; !ok {
			f.m[feature] = nil
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
	for feature, vals := range f.m {
		if len(vals) == 0 {
			out = append(out, feature.String())
		}
		for _, v := range vals {
			out = append(out, feature.String()+"="+v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Has reports whether name was declared (with or without a value).
func (f *Features) Has(name Feature) bool {
	_, ok := f.m[name]
	return ok
}

// Value returns the first value of name.
func (f *Features) Value(name Feature) (string, bool) {
	vals := f.m[name]
	if len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

// Values returns every value of name.
func (f *Features) Values(name Feature) []string { return append([]string(nil), f.m[name]...) }

// Duration parses the value of a duration feature (progress-timeout).
func (f *Features) Duration(name Feature) (time.Duration, bool, error) {
	v, ok := f.Value(name)
	if !ok {
		return 0, false, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, true, fmt.Errorf("feature %s=%q: want a duration >= 0 (0: none, as containerd's 0s)", name, v)
	}
	return d, true, nil
}

// DurationCheck is one parsed duration feature.
type DurationCheck struct {
	Name Feature
	Err  error
}

// Durations checks every duration-valued feature.
func (f *Features) Durations() []DurationCheck {
	_, _, err := f.Duration(FeatureProgressTimeout)
	return []DurationCheck{{FeatureProgressTimeout, err}}
}

// Int parses an integer feature value (stream-batch); 0 if absent or malformed.
func (f *Features) Int(name Feature) int {
	v, _ := f.Value(name)
	n, _ := strconv.Atoi(v)
	return n
}
