package tlsca_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/criimage/criimage/registry/tlsca"
)

func TestIssuedCertificateVerifiesOnlyForItsNames(t *testing.T) {
	ca, err := tlsca.New("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"registry.criimage.test", "127.0.0.1", "::1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CertPEM()) {
		t.Fatal("CertPEM is not a PEM certificate")
	}
	for _, name := range []string{"registry.criimage.test", "127.0.0.1", "::1", "localhost"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("verify %s: %v", name, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: pool}); err == nil {
		t.Error("verified for a name it does not carry")
	}
	other, _ := tlsca.New("other CA", time.Hour)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: other.Pool()}); err == nil {
		t.Error("verified against another CA")
	}
	if _, err := ca.Issue(nil, time.Hour); err == nil {
		t.Error("issued a certificate without names")
	}
}
