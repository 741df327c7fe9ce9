// Command tinysuite is a small ginkgo suite that ginkgopar's tests run under Run. Its specs leave
// marks in $TINYSUITE_DIR so that the test can tell what ran where:
//
//   - sbs-N: process N got process 1's SynchronizedBeforeSuite data;
//   - running/NAME while spec NAME runs, done/NAME after it;
//   - merged.txt: the specs in the report process 1's ReportAfterSuite got (the merged one);
//   - child.pid and hanging (TINYSUITE_HANG): the pid of a child that ignores SIGINT, and that the
//     hanging spec is running.
//
// Two specs wait for each other (so two processes must run at once), one is Serial and checks
// that nothing else runs. TINYSUITE_FAIL=1 adds a failing spec; TINYSUITE_HANG=1 a spec that
// waits for its interrupt, =stubborn one that ignores it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
)

func main() {
	flag.Parse() // ginkgo's flags live on flag.CommandLine (ginkgo's init puts them there)
	dir := os.Getenv("TINYSUITE_DIR")
	if dir == "" {
		fmt.Fprintln(os.Stderr, "tinysuite: set TINYSUITE_DIR")
		os.Exit(2)
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	declare(dir)
	t := &failed{}
	if !ginkgo.RunSpecs(t, "tinysuite") || t.failed {
		os.Exit(1)
	}
}

type failed struct{ failed bool }

func (f *failed) Fail() { f.failed = true }

func declare(dir string) {
	for _, sub := range []string{"running", "done"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			panic(err)
		}
	}
	ginkgo.SynchronizedBeforeSuite(func() []byte {
		return []byte("from-1")
	}, func(data []byte) {
		write(dir, fmt.Sprintf("sbs-%d", ginkgo.GinkgoParallelProcess()), string(data))
	})
	ginkgo.ReportAfterSuite("merged", func(r ginkgo.Report) {
		var names []string
		for _, sr := range r.SpecReports {
			if sr.LeafNodeType != types.NodeTypeIt {
				continue
			}
			names = append(names, fmt.Sprintf("%s %d %s", sr.LeafNodeText, sr.ParallelProcess, sr.State))
		}
		write(dir, "merged.txt", strings.Join(names, "\n"))
	})

	nonSerial := 0
	spec := func(name string, body func(ginkgo.SpecContext)) {
		nonSerial++
		ginkgo.It(name, func(ctx ginkgo.SpecContext) {
			write(dir, filepath.Join("running", name), "")
			ginkgo.DeferCleanup(func() {
				gomega.Expect(os.Remove(filepath.Join(dir, "running", name))).To(gomega.Succeed())
				write(dir, filepath.Join("done", name), "")
			})
			body(ctx)
		})
	}
	rendezvous := func(me, other string) func(ginkgo.SpecContext) {
		return func(ctx ginkgo.SpecContext) {
			write(dir, "started-"+me, "")
			gomega.Eventually(ctx, func() error {
				_, err := os.Stat(filepath.Join(dir, "started-"+other))
				return err
			}).WithTimeout(30*time.Second).WithPolling(10*time.Millisecond).Should(gomega.Succeed(), "%s never started alongside %s: one process ran both", other, me)
		}
	}
	spec("rendezvous a", rendezvous("a", "b"))
	spec("rendezvous b", rendezvous("b", "a"))
	for i := 1; i <= 4; i++ {
		spec(fmt.Sprintf("plain %d", i), func(ginkgo.SpecContext) {})
	}
	// Widens the window in which a Serial spec started too early would see another spec running.
	spec("slow", func(ginkgo.SpecContext) { time.Sleep(300 * time.Millisecond) })
	if os.Getenv("TINYSUITE_FAIL") == "1" {
		spec("fails", func(ginkgo.SpecContext) { ginkgo.Fail("told to fail") })
	}
	switch os.Getenv("TINYSUITE_HANG") {
	case "1":
		spec("hangs", func(ctx ginkgo.SpecContext) {
			startStubbornChild(dir)
			<-ctx.Done()
		})
	case "stubborn":
		spec("hangs", func(ginkgo.SpecContext) {
			startStubbornChild(dir)
			select {} // ignores the interrupt: only SIGKILL ends this process
		})
	}
	ginkgo.It("serial", ginkgo.Serial, func() {
		gomega.Expect(ginkgo.GinkgoParallelProcess()).To(gomega.Equal(1), "Serial specs run on process 1")
		running, err := os.ReadDir(filepath.Join(dir, "running"))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(running).To(gomega.BeEmpty(), "a Serial spec runs alone")
		done, err := os.ReadDir(filepath.Join(dir, "done"))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(done).To(gomega.HaveLen(nonSerial), "a Serial spec runs after every other spec")
	})
}

// startStubbornChild starts a process that ignores SIGINT, in this process's group, and records
// its pid.
func startStubbornChild(dir string) {
	child := exec.Command("sh", "-c", `trap "" INT; exec sleep 300`)
	gomega.Expect(child.Start()).To(gomega.Succeed())
	write(dir, "child.pid", fmt.Sprint(child.Process.Pid))
	write(dir, "hanging", "")
}

func write(dir, name, content string) {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		ginkgo.Fail(err.Error())
	}
}
