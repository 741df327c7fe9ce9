package harness

import "testing"

func TestOffsetPort(t *testing.T) {
	for _, c := range []struct {
		addr string
		proc int
		want string
	}{
		{"", 3, ""}, {"127.0.0.1:0", 3, "127.0.0.1:0"}, {"127.0.0.1:5000", 1, "127.0.0.1:5000"}, {"127.0.0.1:5000", 3, "127.0.0.1:5002"},
	} {
		if got := offsetPort(c.addr, c.proc); got != c.want {
			t.Errorf("offsetPort(%q, %d) = %q, want %q", c.addr, c.proc, got, c.want)
		}
	}
}

func TestDockerLibraryRef(t *testing.T) {
	for ref, want := range map[string]string{
		"docker.io/library/pause:v1": "library/pause v1",
		"pause:v1":                   "library/pause v1",
		"quay.io/library/pause:v1":   "",
		"docker.io/other/pause:v1":   "",
		"docker.io/library/pause@sha256:" + "0000000000000000000000000000000000000000000000000000000000000000": "",
	} {
		repo, tag, ok := DockerLibraryRef(ref)
		got := ""
		if ok {
			got = repo + " " + tag
		}
		if got != want {
			t.Errorf("DockerLibraryRef(%q) = %q, want %q", ref, got, want)
		}
	}
}
