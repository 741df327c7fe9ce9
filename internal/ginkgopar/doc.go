// Package ginkgopar runs a ginkgo v2 suite in N worker processes without the ginkgo CLI: it is the
// CLI's parallel mode (ginkgo -p) for a program that re-executes itself as its own workers.
//
// Two parts:
//
//   - server.go is ginkgo's parallel aggregation server, copied from github.com/onsi/ginkgo/v2
//     v2.34.0 internal/parallel_support (http_server.go, server_handler.go and the types they need
//     from client_server.go), because ginkgo keeps it in an internal package that no other module
//     can import. The MIT licence notice is kept in that file's header, which also lists what was
//     changed (nothing of the wire protocol).
//   - Run (run.go) is the launcher, after the CLI's runParallel (ginkgo/internal/run.go): it
//     starts the server on 127.0.0.1:0 and N workers with ginkgo's parallel flags
//     (--ginkgo.parallel.process=i --ginkgo.parallel.total=N --ginkgo.parallel.host=ADDR), keeps
//     each worker's own stdout and stderr apart, waits for all of them and returns the merged
//     report.
//
// The workers speak ginkgo's HTTP client (Run sets GINKGO_PARALLEL_PROTOCOL=HTTP for them; the
// default RPC protocol's server is not copied). Everything else of the protocol works as under the
// CLI: process 1 runs SynchronizedBeforeSuite's first function and hands its bytes to the others,
// Serial specs run on process 1 after the other processes have finished, ReportAfterSuite runs on
// process 1 with the merged report, and one process's AbortSuite (or --fail-fast) aborts all.
//
// The ginkgo version this copy follows is the one in go.mod; on a ginkgo upgrade, diff the copy
// against the new internal/parallel_support.
package ginkgopar
