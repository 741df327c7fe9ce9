package impl

import "testing"

func TestParseListen(t *testing.T) {
	for _, tc := range []struct{ in, network, addr string }{
		{"unix:///run/criimage.sock", "unix", "/run/criimage.sock"},
		{"tcp://127.0.0.1:10010", "tcp", "127.0.0.1:10010"},
		{"tcp://127.1:10010", "tcp", "127.0.0.1:10010"},
		{"tcp://127.0.1:0", "tcp", "127.0.0.1:0"},
		{"tcp://2130706433:1", "tcp", "127.0.0.1:1"},
		{"tcp://127.255.1:1", "tcp", "127.255.0.1:1"},
		{"tcp://[::1]:1", "tcp", "[::1]:1"},
		{"tcp://localhost:1", "tcp", "localhost:1"},
	} {
		n, a, err := parseListen(tc.in)
		if err != nil || n != tc.network || a != tc.addr {
			t.Errorf("parseListen(%q) = %s %s %v, want %s %s", tc.in, n, a, err, tc.network, tc.addr)
		}
	}
	for _, bad := range []string{"tcp://10.1.2.3:1", "tcp://10.1:1", "tcp://0177.1:1", "tcp://0x7f.1:1", "tcp://127.1.2.3.4:1",
		"tcp://127.16777216:1", "tcp://example.com:1", "unix://relative", "http://127.0.0.1:1"} {
		if _, _, err := parseListen(bad); err == nil {
			t.Errorf("parseListen(%q) accepted", bad)
		}
	}
}
