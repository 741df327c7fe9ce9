// Package deploycheck holds the test of deploy/'s manifests (docs/cluster.md): the Sonobuoy
// plugin, the DaemonSet, the Job, the profile ConfigMap and the namespace decode strictly into
// Kubernetes' own API types (k8s.io/api; the plugin file as Sonobuoy's plugin definition: its
// sonobuoy-config, a core/v1 Container and a core/v1 PodSpec), and each pod they make runs
// criimage as criimage runs: its arguments parse with `criimage test`'s own flag set (suite/run),
// its profile loads with the suite's loader (suite/config), the CRI socket the profile names lies
// on a mounted hostPath, the host network is on, and the image is the one docs/install.md names.
// Like internal/depcheck, the package has no code of its own: the rules are a test.
package deploycheck
