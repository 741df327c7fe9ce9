package deploycheck

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/criimage/criimage/internal/criendpoint"
	"github.com/criimage/criimage/internal/selfimage"
	"github.com/criimage/criimage/suite/config"
	"github.com/criimage/criimage/suite/run"
)

// What the manifests agree on.
const (
	namespace     = "criimage"
	profileCM     = "criimage-profile" // deploy/profile-configmap.yaml
	profileKey    = "profile.yaml"
	crioSocketDir = "/var/run/crio" // the CRI-O variant's socket directory (docs/cluster.md)
	nodeName      = "node-1"        // what $(NODE_NAME) stands for here
)

// Sonobuoy's side of the plugin contract, as vmware-tanzu/sonobuoy does it (pkg/client/gen.go:
// applyAutoEnvVars and the config-map mount; pkg/discovery: AutoAttachResultsDir;
// pkg/plugin/driver/daemonset: the results volume and the worker container).
const (
	sonobuoyResultsDir    = "/tmp/sonobuoy/results" // its default ResultsDir
	sonobuoyConfigDir     = "/tmp/sonobuoy/config"  // where a plugin's config-map is mounted
	sonobuoyResultsVolume = "results"               // the emptyDir shared with the worker
	sonobuoyWorker        = "sonobuoy-worker"
)

// sonobuoyEnv is what Sonobuoy adds to a plugin container's environment.
func sonobuoyEnv() map[string]string {
	return map[string]string{
		"SONOBUOY":               "true",
		"SONOBUOY_K8S_VERSION":   "v1.37.0",
		"SONOBUOY_RESULTS_DIR":   sonobuoyResultsDir,
		"RESULTS_DIR":            sonobuoyResultsDir,
		"SONOBUOY_CONFIG_DIR":    sonobuoyConfigDir,
		"SONOBUOY_PROGRESS_PORT": "8099",
	}
}

// guardFeature makes any run of run.Main stop at its configuration check (CRIIMAGE_FEATURES is
// re-checked there, before a spec is registered), in case an argument list that should have
// stopped at -h does not.
const guardFeature = "deploycheck-stops-here"

// sonobuoyPlugin is a Sonobuoy plugin definition, field for field Sonobuoy's manifest.Manifest
// (pkg/plugin/manifest), with Kubernetes' own types for its container, volumes and pod spec.
type sonobuoyPlugin struct {
	SonobuoyConfig sonobuoyConfig    `json:"sonobuoy-config"`
	Spec           corev1.Container  `json:"spec"`
	ExtraVolumes   []corev1.Volume   `json:"extra-volumes,omitempty"`
	PodSpec        *corev1.PodSpec   `json:"podSpec,omitempty"`
	ConfigMap      map[string]string `json:"config-map,omitempty"`
}

// sonobuoyConfig is manifest.SonobuoyConfig.
type sonobuoyConfig struct {
	Driver       string   `json:"driver"`
	PluginName   string   `json:"plugin-name"`
	SkipCleanup  bool     `json:"skip-cleanup,omitempty"`
	ResultFormat string   `json:"result-format,omitempty"`
	ResultFiles  []string `json:"result-files,omitempty"`
	Description  string   `json:"description,omitempty"`
	SourceURL    string   `json:"source-url,omitempty"`
	Order        int      `json:"order,omitempty"`
}

// pod is what one manifest has a node run.
type pod struct {
	manifest   string // for messages
	spec       corev1.PodSpec
	container  string                       // the name of criimage's container
	configMaps map[string]map[string]string // ConfigMap name → data, for the pod's configMap volumes
	extraEnv   map[string]string            // variables the container gets besides its env
}

func deployDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// decode reads deploy/name strictly into v: an unknown or repeated key is an error.
func decode(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("deploy/%s: %v", name, err)
	}
}

// wantImage is the image docs/install.md names: its repository (which must be
// selfimage.DefaultRepo, normalized) at the release version its commands use.
func wantImage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "..", "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	repo := regexp.MustCompile(`\b(docker\.io/library/[a-z0-9._-]+):VERSION\b`).FindSubmatch(b)
	version := regexp.MustCompile(`\bV=(v[0-9]+\.[0-9]+\.[0-9]+)\b`).FindSubmatch(b)
	if repo == nil || version == nil {
		t.Fatal("docs/install.md: no docker.io/library/NAME:VERSION or V=vX.Y.Z found")
	}
	named, err := reference.ParseNormalizedNamed(selfimage.DefaultRepo)
	if err != nil {
		t.Fatal(err)
	}
	if named.Name() != string(repo[1]) {
		t.Fatalf("docs/install.md names %s, selfimage.DefaultRepo is %s", repo[1], named.Name())
	}
	return string(repo[1]) + ":" + string(version[1])
}

func profileConfigMap(t *testing.T) corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	decode(t, "profile-configmap.yaml", &cm)
	return cm
}

func daemonSetPod(t *testing.T) (appsv1.DaemonSet, pod) {
	t.Helper()
	var ds appsv1.DaemonSet
	decode(t, "daemonset.yaml", &ds)
	return ds, pod{
		manifest:   "deploy/daemonset.yaml",
		spec:       ds.Spec.Template.Spec,
		container:  "criimage",
		configMaps: map[string]map[string]string{profileCM: profileConfigMap(t).Data},
	}
}

func jobPod(t *testing.T) (batchv1.Job, pod) {
	t.Helper()
	var job batchv1.Job
	decode(t, "job.yaml", &job)
	return job, pod{
		manifest:   "deploy/job.yaml",
		spec:       job.Spec.Template.Spec,
		container:  "criimage",
		configMaps: map[string]map[string]string{profileCM: profileConfigMap(t).Data},
	}
}

func sonobuoyPod(t *testing.T) (sonobuoyPlugin, pod) {
	t.Helper()
	var p sonobuoyPlugin
	decode(t, "sonobuoy/criimage-plugin.yaml", &p)
	if p.PodSpec == nil {
		t.Fatal("deploy/sonobuoy/criimage-plugin.yaml: no podSpec (Sonobuoy's default has no hostPath volumes)")
	}
	return p, pod{
		manifest:   "deploy/sonobuoy/criimage-plugin.yaml",
		spec:       sonobuoyPodSpec(p),
		container:  p.Spec.Name,
		configMaps: map[string]map[string]string{"plugin-" + p.SonobuoyConfig.PluginName + "-cm": p.ConfigMap},
		extraEnv:   sonobuoyEnv(),
	}
}

// sonobuoyPodSpec is the pod spec of the DaemonSet Sonobuoy makes of p: p's podSpec, p's
// container with the results mount (moved to Sonobuoy's results dir) and the config-map's mount,
// the worker, the results emptyDir, the config-map's volume and the extra volumes.
func sonobuoyPodSpec(p sonobuoyPlugin) corev1.PodSpec {
	spec := *p.PodSpec.DeepCopy()
	c := *p.Spec.DeepCopy()
	results := corev1.VolumeMount{Name: sonobuoyResultsVolume, MountPath: sonobuoyResultsDir}
	if i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == sonobuoyResultsVolume }); i >= 0 {
		c.VolumeMounts[i].MountPath = sonobuoyResultsDir
	} else {
		c.VolumeMounts = append(c.VolumeMounts, results)
	}
	if len(p.ConfigMap) > 0 {
		vol := "sonobuoy-" + p.SonobuoyConfig.PluginName + "-vol"
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: sonobuoyConfigDir})
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "plugin-" + p.SonobuoyConfig.PluginName + "-cm"},
		}}})
	}
	spec.Containers = append(spec.Containers, c, corev1.Container{
		Name: sonobuoyWorker, Image: "sonobuoy/sonobuoy", VolumeMounts: []corev1.VolumeMount{results},
	})
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: sonobuoyResultsVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	for _, v := range p.ExtraVolumes {
		spec.Volumes = append(spec.Volumes, v)
	}
	return spec
}

// TestNamespace: the namespace the plain manifests use allows their pods (Pod Security's
// privileged level: host network and hostPath volumes).
func TestNamespace(t *testing.T) {
	var ns corev1.Namespace
	decode(t, "namespace.yaml", &ns)
	if ns.Kind != "Namespace" || ns.APIVersion != "v1" || ns.Name != namespace {
		t.Errorf("deploy/namespace.yaml: %s %s %q, want v1 Namespace %q", ns.APIVersion, ns.Kind, ns.Name, namespace)
	}
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("deploy/namespace.yaml: pod-security.kubernetes.io/enforce is %q, want privileged (hostNetwork, hostPath)", got)
	}
}

// TestProfileConfigMap: the profile loads with the suite's loader, and so does its commented
// CRI-O variant, whose socket lies in CRI-O's socket directory.
func TestProfileConfigMap(t *testing.T) {
	cm := profileConfigMap(t)
	if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" || cm.Name != profileCM || cm.Namespace != namespace {
		t.Errorf("deploy/profile-configmap.yaml: %s %s %s/%s, want v1 ConfigMap %s/%s", cm.APIVersion, cm.Kind, cm.Namespace, cm.Name, namespace, profileCM)
	}
	if _, err := loadProfile(t.TempDir(), cm.Data, profileKey); err != nil {
		t.Error(err)
	}
	crio := commentedProfile(t)
	p, err := loadProfile(t.TempDir(), map[string]string{profileKey: crio}, profileKey)
	if err != nil {
		t.Fatalf("the CRI-O variant: %v", err)
	}
	ep, err := criendpoint.Parse(p.ImageEndpoint)
	if err != nil || ep.Network != "unix" || !within(ep.Address, crioSocketDir) {
		t.Errorf("the CRI-O variant's imageEndpoint %q is not a socket under %s (%v)", p.ImageEndpoint, crioSocketDir, err)
	}
}

// commentedProfile is the profile.yaml of deploy/profile-configmap.yaml's commented CRI-O
// variant: from its "#  profile.yaml: |" line on, the lines with their "#" removed.
func commentedProfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "profile-configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for line := range strings.Lines(string(b)) {
		if len(block) == 0 && !strings.HasPrefix(line, "#  "+profileKey+": |") {
			continue
		}
		if !strings.HasPrefix(line, "#  ") && strings.TrimSpace(line) != "#" {
			break
		}
		block = append(block, strings.TrimPrefix(line, "#"))
	}
	if len(block) == 0 {
		t.Fatal("deploy/profile-configmap.yaml: no commented CRI-O variant (#  profile.yaml: |)")
	}
	var data map[string]string
	if err := yaml.UnmarshalStrict([]byte(strings.Join(block, "")), &data); err != nil {
		t.Fatalf("deploy/profile-configmap.yaml: the CRI-O variant: %v", err)
	}
	return data[profileKey]
}

// loadProfile writes a ConfigMap's data into dir (as its volume shows it) and loads key from
// there with the suite's own loader.
func loadProfile(dir string, data map[string]string, key string) (*config.Profile, error) {
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			return nil, err
		}
	}
	if _, ok := data[key]; !ok {
		return nil, fmt.Errorf("no key %s", key)
	}
	return config.LoadProfile(filepath.Join(dir, key))
}

// TestDaemonSet: deploy/daemonset.yaml's pod runs criimage on every Linux node, and waits after
// the run (a DaemonSet restarts a container that exits).
func TestDaemonSet(t *testing.T) {
	t.Setenv("CRIIMAGE_FEATURES", guardFeature)
	ds, p := daemonSetPod(t)
	if ds.Kind != "DaemonSet" || ds.APIVersion != "apps/v1" || ds.Namespace != namespace {
		t.Errorf("%s: %s %s in %q, want apps/v1 DaemonSet in %q", p.manifest, ds.APIVersion, ds.Kind, ds.Namespace, namespace)
	}
	if ds.Spec.Selector == nil || !subset(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("%s: the selector does not select the template's labels", p.manifest)
	}
	for _, problem := range checkPod(p, wantImage(t), t.TempDir()) {
		t.Errorf("%s: %s", p.manifest, problem)
	}
	if !hasBoolFlag(criimageArgs(p), "wait-after-run") {
		t.Errorf("%s: no --wait-after-run: the DaemonSet would restart criimage, and the suite run again, when it exits", p.manifest)
	}
}

// TestJob: deploy/job.yaml's pod runs criimage once on the node it names, and exits.
func TestJob(t *testing.T) {
	t.Setenv("CRIIMAGE_FEATURES", guardFeature)
	job, p := jobPod(t)
	if job.Kind != "Job" || job.APIVersion != "batch/v1" || job.Namespace != namespace {
		t.Errorf("%s: %s %s in %q, want batch/v1 Job in %q", p.manifest, job.APIVersion, job.Kind, job.Namespace, namespace)
	}
	if p.spec.RestartPolicy != corev1.RestartPolicyNever || job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 {
		t.Errorf("%s: want restartPolicy Never and backoffLimit 0 (a failed run is a result: no second run)", p.manifest)
	}
	if p.spec.NodeName == "" && p.spec.NodeSelector["kubernetes.io/hostname"] == "" {
		t.Errorf("%s: no node chosen (nodeName or nodeSelector kubernetes.io/hostname)", p.manifest)
	}
	for _, problem := range checkPod(p, wantImage(t), t.TempDir()) {
		t.Errorf("%s: %s", p.manifest, problem)
	}
	if hasBoolFlag(criimageArgs(p), "wait-after-run") {
		t.Errorf("%s: --wait-after-run: the Job would never complete", p.manifest)
	}
}

// TestSonobuoyPlugin: the pod Sonobuoy makes of deploy/sonobuoy/criimage-plugin.yaml runs
// criimage on every Linux node, writes the reports where the worker sends them from and the done
// file where it waits for it, and carries deploy/profile-configmap.yaml's profile.
func TestSonobuoyPlugin(t *testing.T) {
	t.Setenv("CRIIMAGE_FEATURES", guardFeature)
	plugin, p := sonobuoyPod(t)
	sc := plugin.SonobuoyConfig
	if sc.Driver != "DaemonSet" || sc.PluginName != "criimage" || sc.ResultFormat != "junit" {
		t.Errorf("%s: driver %q, plugin-name %q, result-format %q; want DaemonSet, criimage, junit", p.manifest, sc.Driver, sc.PluginName, sc.ResultFormat)
	}
	for _, problem := range checkPod(p, wantImage(t), t.TempDir()) {
		t.Errorf("%s: %s", p.manifest, problem)
	}
	args := criimageArgs(p)
	if done, _ := flagValue(args, "done-file"); done != path.Join(sonobuoyResultsDir, "done") {
		t.Errorf("%s: --done-file is %q; Sonobuoy's worker waits for %s/done", p.manifest, done, sonobuoyResultsDir)
	}
	if dir, _ := flagValue(args, "report-dir"); !within(dir, sonobuoyResultsDir) {
		t.Errorf("%s: --report-dir %q is not under %s, which the worker sends", p.manifest, dir, sonobuoyResultsDir)
	}
	if !hasBoolFlag(args, "wait-after-run") {
		t.Errorf("%s: no --wait-after-run: the DaemonSet would restart criimage, and the suite run again, when it exits", p.manifest)
	}
	if got, want := plugin.ConfigMap[profileKey], profileConfigMap(t).Data[profileKey]; got != want {
		t.Errorf("%s: config-map's %s differs from deploy/profile-configmap.yaml's: keep them equal", p.manifest, profileKey)
	}
}

// TestChecksCatchMistakes: checkPod finds each mistake it is for in an otherwise good pod.
func TestChecksCatchMistakes(t *testing.T) {
	t.Setenv("CRIIMAGE_FEATURES", guardFeature)
	image := wantImage(t)
	mutations := []struct {
		name   string
		mutate func(s *corev1.PodSpec, c *corev1.Container)
		want   string
	}{
		{"no socket mount", func(_ *corev1.PodSpec, c *corev1.Container) { c.VolumeMounts = dropMount(c.VolumeMounts, "cri-socket") }, "CRI socket"},
		{"no host network", func(s *corev1.PodSpec, _ *corev1.Container) { s.HostNetwork = false }, "hostNetwork"},
		{"mount without volume", func(s *corev1.PodSpec, _ *corev1.Container) {
			s.Volumes = slices.DeleteFunc(s.Volumes, func(v corev1.Volume) bool { return v.Name == "profile" })
		}, "has no volume"},
		{"unknown flag", func(_ *corev1.PodSpec, c *corev1.Container) { c.Args = append(c.Args, "--no-such-flag") }, "flag provided but not defined"},
		{"flag without value", func(_ *corev1.PodSpec, c *corev1.Container) { c.Args = append(c.Args, "--focus") }, "not a criimage test command line"},
		{"stray argument", func(_ *corev1.PodSpec, c *corev1.Container) { c.Args = append(c.Args, "PULL-001") }, "unexpected arguments"},
		{"bad value", func(_ *corev1.PodSpec, c *corev1.Container) { c.Args = append(c.Args, "--rpc-timeout=soon") }, "invalid value"},
		{"undefined variable", func(_ *corev1.PodSpec, c *corev1.Container) { c.Args = append(c.Args, "--focus=$(SPEC)") }, "$(SPEC)"},
		{"other image", func(_ *corev1.PodSpec, c *corev1.Container) { c.Image = "criimage:latest" }, "docs/install.md"},
		{"privileged", func(_ *corev1.PodSpec, c *corev1.Container) { c.SecurityContext.Privileged = new(true) }, "privileged"},
		{"read-only certs.d", func(_ *corev1.PodSpec, c *corev1.Container) {
			c.VolumeMounts[slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "certs-d" })].ReadOnly = true
		}, "registry config dir"},
		{"TMPDIR not the host's path", func(_ *corev1.PodSpec, c *corev1.Container) {
			c.VolumeMounts[slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "tmp" })].MountPath = "/tmp"
			c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "TMPDIR" })].Value = "/tmp"
		}, "TMPDIR"},
		{"profile not mounted", func(_ *corev1.PodSpec, c *corev1.Container) { c.VolumeMounts = dropMount(c.VolumeMounts, "profile") }, "--profile"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			_, p := daemonSetPod(t)
			i := slices.IndexFunc(p.spec.Containers, func(c corev1.Container) bool { return c.Name == p.container })
			m.mutate(&p.spec, &p.spec.Containers[i])
			problems := checkPod(p, image, t.TempDir())
			t.Logf("%q", problems)
			if !slices.ContainsFunc(problems, func(s string) bool { return strings.Contains(s, m.want) }) {
				t.Errorf("no problem mentioning %q; got %q", m.want, problems)
			}
		})
	}
}

func dropMount(ms []corev1.VolumeMount, name string) []corev1.VolumeMount {
	return slices.DeleteFunc(ms, func(m corev1.VolumeMount) bool { return m.Name == name })
}

// checkPod returns what is wrong with p as a pod that runs criimage test against its node's
// runtime: every problem, each as a sentence.
func checkPod(p pod, image, tmp string) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	s := p.spec
	if !s.HostNetwork {
		bad("hostNetwork is not true: the suite's registry listens on the node's 127.0.0.1 and 127.0.0.2, where the node's runtime pulls from")
	}
	if s.HostPID || s.HostIPC {
		bad("hostPID or hostIPC: criimage needs neither")
	}
	if s.NodeSelector["kubernetes.io/os"] != "linux" {
		bad("no nodeSelector kubernetes.io/os: linux (the image is linux/amd64 and linux/arm64)")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range s.Volumes {
		if _, dup := volumes[v.Name]; dup {
			bad("two volumes named %s", v.Name)
		}
		volumes[v.Name] = v
	}
	for _, c := range slices.Concat(s.InitContainers, s.Containers) {
		paths := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				bad("container %s: volumeMount %s (%s) has no volume", c.Name, m.Name, m.MountPath)
			}
			if paths[path.Clean(m.MountPath)] {
				bad("container %s: two mounts at %s", c.Name, m.MountPath)
			}
			paths[path.Clean(m.MountPath)] = true
		}
	}
	i := slices.IndexFunc(s.Containers, func(c corev1.Container) bool { return c.Name == p.container })
	if i < 0 {
		return append(problems, fmt.Sprintf("no container %s", p.container))
	}
	c := s.Containers[i]
	if c.Image != image {
		bad("image %q, want %q (docs/install.md)", c.Image, image)
	}
	if len(c.Command) > 0 && !slices.Equal(c.Command, []string{selfimage.BinaryPath}) {
		bad("command %q, want the image's entrypoint %s", c.Command, selfimage.BinaryPath)
	}
	problems = append(problems, checkSecurity(c)...)

	env := envOf(c, p.extraEnv)
	args, err := expandAll(c.Args, env)
	if err != nil {
		bad("args: %v", err)
	}
	if len(args) == 0 || args[0] != "test" {
		return append(problems, fmt.Sprintf("args %q do not start with test", c.Args))
	}
	args = args[1:]
	if err := parseProblem(args); err != nil {
		bad("args are not a criimage test command line: %v", err)
	}
	where := func(pth string) (corev1.VolumeMount, corev1.Volume, bool) {
		return mountFor(c.VolumeMounts, volumes, pth)
	}
	writable := func(what, pth string, hostOnly bool) {
		m, v, ok := where(pth)
		switch {
		case !ok:
			bad("the %s %s is on no volume", what, pth)
		case m.ReadOnly:
			bad("the %s %s is on the read-only mount %s", what, pth, m.Name)
		case v.HostPath == nil && (hostOnly || v.EmptyDir == nil):
			bad("the %s %s is not on a hostPath volume", what, pth)
		}
	}

	profilePath, ok := flagValue(args, "profile")
	if !ok {
		return append(problems, "no --profile")
	}
	prof, err := mountedProfile(profilePath, c.VolumeMounts, volumes, p.configMaps, tmp)
	if err != nil {
		return append(problems, fmt.Sprintf("--profile %s: %v", profilePath, err))
	}
	endpoint, ok := flagValue(args, "image-endpoint")
	if !ok {
		endpoint = prof.ImageEndpoint
	}
	if ep, err := criendpoint.Parse(endpoint); err != nil || ep.Network != "unix" {
		bad("image endpoint %q: want a unix socket (%v)", endpoint, err)
	} else if _, v, ok := where(ep.Address); !ok || v.HostPath == nil {
		bad("the CRI socket %s (the profile's imageEndpoint) is on no hostPath mount", ep.Address)
	}
	configDir, ok := flagValue(args, "registry-config-dir")
	if !ok {
		configDir = prof.RegistryConfigDir
	}
	if configDir != "" {
		writable("registry config dir", configDir, true)
	}
	var features config.Features
	for _, f := range prof.Features {
		_ = features.Set(f) // LoadProfile checked them
	}
	if f, ok := flagValue(args, "features"); ok {
		if err := features.Set(f); err != nil {
			bad("--features: %v", err)
		}
	}
	if features.Has(config.FeatureRestart) {
		bad("feature restart: it runs sh -c CMD, and the image has no shell (and it would restart the node's runtime)")
	}
	if features.Has(config.FeatureMirror) || features.Has(config.FeaturePinned) {
		bad("feature mirror or pinned: the suite would replace the node's docker.io hosts.toml and leave it pointing at a registry that is gone")
	}
	if features.Has(config.FeatureTLS) || features.Has(config.FeatureTLSHostname) {
		// The hosts.toml files name the fixture CA by its path under TMPDIR, which the runtime
		// reads on the host.
		tmpdir := env["TMPDIR"]
		m, v, ok := where(tmpdir)
		switch {
		case tmpdir == "":
			bad("feature tls or tls-hostname without TMPDIR on a hostPath: the runtime cannot read the fixture CA")
		case !ok || v.HostPath == nil || m.ReadOnly || m.SubPath != "" || path.Clean(v.HostPath.Path) != path.Clean(m.MountPath):
			bad("feature tls or tls-hostname: TMPDIR %s is not on a writable hostPath mounted at the host's own path, so the runtime cannot read the fixture CA that the hosts.toml files name", tmpdir)
		}
	}
	if dir, ok := flagValue(args, "report-dir"); !ok {
		bad("no --report-dir")
	} else {
		writable("report dir", dir, false)
	}
	if done, ok := flagValue(args, "done-file"); ok {
		writable("done file", path.Dir(done), false)
	}
	return problems
}

// checkSecurity: root without capabilities and without privilege (see the manifests' comments).
func checkSecurity(c corev1.Container) []string {
	sc := c.SecurityContext
	if sc == nil {
		return []string{"no securityContext (want: no privilege, no escalation, every capability dropped)"}
	}
	var problems []string
	if sc.Privileged != nil && *sc.Privileged {
		problems = append(problems, "privileged: criimage needs root's ownership of the socket and certs.d, nothing more")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		problems = append(problems, "allowPrivilegeEscalation is not false")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		problems = append(problems, "capabilities: want drop [ALL] and nothing added")
	}
	return problems
}

// mountedProfile loads the profile at pth in the pod: a key of the ConfigMap whose volume is
// mounted at pth's directory.
func mountedProfile(pth string, mounts []corev1.VolumeMount, volumes map[string]corev1.Volume, configMaps map[string]map[string]string, tmp string) (*config.Profile, error) {
	m, v, ok := mountFor(mounts, volumes, pth)
	if !ok || v.ConfigMap == nil || path.Clean(m.MountPath) != path.Dir(pth) || m.SubPath != "" || len(v.ConfigMap.Items) > 0 {
		return nil, errors.New("not a key of a ConfigMap volume mounted at its directory")
	}
	data, ok := configMaps[v.ConfigMap.Name]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s is not among the manifests", v.ConfigMap.Name)
	}
	return loadProfile(tmp, data, path.Base(pth))
}

// mountFor is the mount pth is on (the deepest mount path above it) and its volume.
func mountFor(mounts []corev1.VolumeMount, volumes map[string]corev1.Volume, pth string) (corev1.VolumeMount, corev1.Volume, bool) {
	var best corev1.VolumeMount
	found := false
	for _, m := range mounts {
		if within(pth, m.MountPath) && (!found || len(path.Clean(m.MountPath)) > len(path.Clean(best.MountPath))) {
			best, found = m, true
		}
	}
	v, ok := volumes[best.Name]
	return best, v, found && ok
}

// within reports whether pth is dir or lies under it.
func within(pth, dir string) bool {
	if !path.IsAbs(pth) {
		return false
	}
	pth, dir = path.Clean(pth), path.Clean(dir)
	return pth == dir || strings.HasPrefix(pth, strings.TrimSuffix(dir, "/")+"/")
}

func subset(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) > 0
}

// envOf is the container's environment as its args see it: literal values, a field reference as
// a stand-in value, and extra.
func envOf(c corev1.Container, extra map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range extra {
		env[k] = v
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env[e.Name] = nodeName
		case e.ValueFrom != nil:
			env[e.Name] = "value-of-" + e.Name
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// expandAll does to args what the kubelet does: $(NAME) becomes the value of the container's
// variable NAME and $$ becomes $. A reference to a variable the container does not have would
// stay as it is: that is an error here.
func expandAll(args []string, env map[string]string) ([]string, error) {
	ref := regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	var errs []error
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = ref.ReplaceAllStringFunc(a, func(m string) string {
			if m == "$$" {
				return "$"
			}
			name := m[2 : len(m)-1]
			v, ok := env[name]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: the container has no variable %s", m, name))
				return m
			}
			return v
		})
	}
	return out, errors.Join(errs...)
}

// criimageArgs is the criimage container's args after "test", expanded.
func criimageArgs(p pod) []string {
	i := slices.IndexFunc(p.spec.Containers, func(c corev1.Container) bool { return c.Name == p.container })
	if i < 0 {
		return nil
	}
	args, _ := expandAll(p.spec.Containers[i].Args, envOf(p.spec.Containers[i], p.extraEnv))
	if len(args) == 0 {
		return nil
	}
	return args[1:]
}

// flagValue is the value of the last --name=V, -name=V or --name V in args.
func flagValue(args []string, name string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(args); i++ {
		n, v, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || n != name {
			continue
		}
		if !hasValue && i+1 < len(args) {
			i++
			v = args[i]
		}
		val, found = v, true
	}
	return val, found
}

func hasBoolFlag(args []string, name string) bool {
	return slices.Contains(args, "--"+name) || slices.Contains(args, "-"+name) || slices.Contains(args, "--"+name+"=true")
}

// parseProblem parses args with criimage test's own flag set: run.Main given args and then -h
// returns flag.ErrHelp only when every argument before the -h parsed as a flag of criimage test
// and its value. An unknown flag, a bad value and a stray argument are errors, and a flag left
// without its value takes the -h as its value, so that no ErrHelp comes. Main returns at -h
// before it reads a profile or registers a spec; callers set CRIIMAGE_FEATURES to guardFeature so
// that it stops at its configuration check when there is no -h.
func parseProblem(args []string) error {
	err := run.Main(context.Background(), append(slices.Clip(args), "-h"), io.Discard, io.Discard, run.Options{})
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil
	case err == nil:
		return errors.New("the -h after them did not stop criimage test")
	case !regexp.MustCompile(`flag provided but not defined|invalid value|invalid boolean value|bad flag syntax|flag needs an argument|unexpected arguments`).MatchString(err.Error()):
		// Not the flag set's error: the -h did not stop the parse.
		return fmt.Errorf("a flag took the -h after them as its value (a flag without its value?), and criimage test went on: %w", err)
	}
	return err
}
