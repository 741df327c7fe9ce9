package route

import "testing"

func TestParse(t *testing.T) {
	const hex = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		path string
		want Route
	}{
		{"/v2/", Route{Kind: KindPing, ValidName: true}},
		{"/v2/anon/busybox/manifests/latest", Route{Kind: KindManifest, Repo: "anon/busybox", Namespace: "anon", Reference: "latest", ValidName: true}},
		{"/v2/token/a/manifests/" + hex, Route{Kind: KindManifest, Repo: "token/a", Namespace: "token", Reference: hex, Digest: hex, ValidName: true}},
		{"/v2/anon/x/blobs/" + hex, Route{Kind: KindBlob, Repo: "anon/x", Namespace: "anon", Reference: hex, Digest: hex, ValidName: true}},
		{"/v2/anon/x/blobs/sha256:../../etc", Route{Kind: KindBlob, Repo: "anon/x", Namespace: "anon", Reference: "sha256:../../etc", ValidName: true}},
		{"/v2/anon/x/blobs/uploads/", Route{Kind: KindUpload, Repo: "anon/x", Namespace: "anon", ValidName: true}},
		{"/v2/anon/x/blobs/uploads/abc", Route{Kind: KindUpload, Repo: "anon/x", Namespace: "anon", Reference: "abc", ValidName: true}},
		{"/v2/anon/x/tags/list", Route{Kind: KindTags, Repo: "anon/x", Namespace: "anon", ValidName: true}},
		{"/v2/Anon/X/manifests/latest", Route{Kind: KindManifest, Repo: "Anon/X", Namespace: "Anon", Reference: "latest", ValidName: false}},
		{"/v2/_catalog", Route{Kind: KindCatalog, ValidName: true}},
		{"/token", Route{Kind: KindToken, ValidName: true}},
		{"/blobs/" + hex, Route{Kind: KindForeign, Reference: hex, Digest: hex, ValidName: true}},
		{"/elsewhere", Route{Kind: KindOther, ValidName: true}},
	} {
		if got := Parse(tc.path); got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
	}
}
