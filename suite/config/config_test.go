package config

import (
	"flag"
	"testing"
)

func TestFeatures(t *testing.T) {
	c := &Config{}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs, "")
	err := fs.Parse([]string{"--features", "schema1,pinned=docker.io/library/a:1", "--features", "pinned=b,progress-timeout=2s,restart=sh -c 'a,b'"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Features.Has(FeatureSchema1) || c.Features.Has(FeatureMirror) {
		t.Errorf("Has: %v", c.Features.String())
	}
	if got := c.Features.Values(FeaturePinned); len(got) != 2 || got[0] != "docker.io/library/a:1" || got[1] != "b" {
		t.Errorf("pinned = %q", got)
	}
	if v, _ := c.Features.Value(FeatureRestart); v != "sh -c 'a,b'" {
		t.Errorf("restart = %q", v)
	}
	if d, ok, err := c.Features.Duration(FeatureProgressTimeout); !ok || err != nil || d.Seconds() != 2 {
		t.Errorf("progress-timeout = %v %v %v", d, ok, err)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	var f Features
	if err := f.Set("nonsense"); err == nil {
		t.Error("unknown feature accepted")
	}
	bad := &Config{ImageEndpoint: "/run/x.sock"}
	if err := bad.Validate(); err == nil {
		t.Error("endpoint without scheme accepted")
	}
}
