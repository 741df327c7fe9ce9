// Package netns is the remote-runtime test (make netns-test): a runtime on another machine
// pulling from the fixture registry, with two network namespaces joined by a veth pair standing
// in for the two machines. The registry (`criimage registry -listen … -advertise … -allow-remote`)
// runs in one, the reference runtime (`criimage serve`) in the other with a certs.d tree written
// for the advertised host, and the test drives CRI over the runtime's unix socket. A second test
// runs the whole suite (`criimage test --registry-listen … --registry-advertise …
// --registry-allow-remote`) in the registry's namespace against that runtime. Both need root and
// `ip netns`; elsewhere they skip, saying why. The package has no code of its own.
package netns
