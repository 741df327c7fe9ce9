// Package bench measures CRI image services through CRI: the reference ImageService (`criimage
// serve`) against containerd v2.4.2 and 1.6.20 side by side, or any runtime by its endpoint,
// every runtime a real process pulling from one hermetic fixture registry over loopback.
//
// Measure is the measurement loop: it runs the cases on Targets (an endpoint, and the serving
// process when known). Two callers give it targets:
//
//   - Run, the driver (cmd/criimage-bench: `make bench`), starts its own daemons (Daemon) and
//     compares them side by side;
//   - RunEndpoint (`criimage bench --image-endpoint`) measures a runtime someone else runs, with
//     the reference beside it on request. It refuses a store that already holds an image named
//     like the bench's (RepoPrefix) or with a bench image's ID, writes the registry's hosts.toml
//     into the runtime's certs.d for the run, and removes everything it pulled before it returns,
//     Ctrl-C included. The serving process of a unix socket is found with SO_PEERCRED.
//
// Flags (NewFlags) choose the cases and sizes with the same names in both commands.
//
// The driver (cmd/criimage-bench, run by `make bench` / `make bench-quick`) starts the fixture
// registry in-process, pushes the benchmark images, starts each runtime in its own temp dir
// (containerd through registry/runtimeconfig and hack/containerd-daemon.sh, the reference as
// `criimage serve`), and runs every case on every runtime in alternation, Runs times each. Every
// pull is cold: the image is removed through CRI (a synchronous garbage collection on every
// runtime), its absence checked, the file system synced, and the driver waits until the daemon
// has been idle for 200 ms (containerd finishes work after RemoveImage returns). It prints a table of medians, min/max and the
// ratio reference/containerd per case, and can rewrite the table section of docs/bench.md.
//
// Cases (the default sizes; -quick, -large, -huge, -many-layers, -fresh, -concurrent and -list
// change them, and the names with them):
//
//	pull-256MiB-8     256 MiB of incompressible data in 8 gzip layers, cold
//	pull-1GiB-4       1 GiB in 4 layers, cold
//	pull-200-layers   200 small layers, cold
//	pull-64MiB        one fresh 64 MiB image (4 layers) — the baseline of the concurrent cases
//	concurrent-16/64  16 or 64 concurrent PullImage calls of one fresh 64 MiB image (wall time
//	                  of the whole burst; blob GETs per blob counted from the registry journal)
//	list-10k          ListImages with 10,000 images in the store
//	stream-10k        StreamImages with the same 10,000 images (containerd 1.6.20: Unimplemented)
//	rss-256MiB        peak RSS (VmHWM after clear_refs) of the daemon during the 256 MiB pull
//
// The 10,000 images are tiny and unique (one shared 1-layer base, a unique config each), pushed
// through the registry's Go API and pulled by every runtime with 32 concurrent PullImage calls
// (all runtimes at once) into fresh daemons whose dirs are on a tmpfs (-list-tmp, /dev/shm):
// the fill is bound by metadata fsyncs and would take many minutes on disk, and listing never
// touches the disk. Every runtime then holds the same set.
//
// A run is bounded (-timeout, 15 min); `make bench` takes about 7 minutes here.
//
// The Go benchmarks in this package (go test -bench . ./bench) run the reference in-process for
// profiling (-cpuprofile, -memprofile); they are skipped by plain `go test`.
package bench
