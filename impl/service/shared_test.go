package service_test

import (
	"context"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/criimage/criimage/impl/pull"
	"github.com/criimage/criimage/impl/service"
)

// sharedPulls merges concurrent pulls of one reference into one, as impl/pull does: one
// pull, its result handed to every caller, its lease ended by the last caller's Done. after,
// if set, runs once the shared pull is done, before any caller gets the result.
type sharedPulls struct {
	pull    service.Puller
	after   func()
	joined  chan struct{} // if set, one send per caller, once it is counted in a flight
	mu      sync.Mutex
	flights map[string]*flight
}

type flight struct {
	done  chan struct{}
	res   pull.Result
	err   error
	users int
}

func (s *sharedPulls) Pull(ctx context.Context, req pull.Request) (pull.Result, error) {
	key := req.Ref.String() + " " + req.Snapshotter
	s.mu.Lock()
	f, ok := s.flights[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		s.flights[key] = f
	}
	f.users++
	s.mu.Unlock()
	if s.joined != nil {
		s.joined <- struct{}{}
	}
	if !ok {
		f.res, f.err = s.pull.Pull(context.WithoutCancel(ctx), req)
		if s.after != nil {
			s.after()
		}
		close(f.done)
	}
	<-f.done
	release := func(ctx context.Context) error {
		s.mu.Lock()
		f.users--
		last := f.users == 0
		if last {
			delete(s.flights, key)
		}
		s.mu.Unlock()
		if last && f.res.Done != nil {
			return f.res.Done(ctx)
		}
		return nil
	}
	if f.err != nil {
		_ = release(ctx)
		return pull.Result{}, f.err
	}
	res := f.res
	res.Done = release
	return res, nil
}

func newShared(after func(), callers int) (*sharedPulls, func(service.Puller) service.Puller) {
	s := &sharedPulls{after: after, flights: map[string]*flight{}}
	if callers > 0 {
		s.joined = make(chan struct{}, callers)
	}
	return s, func(p service.Puller) service.Puller { s.pull = p; return s }
}

// txID is the ID of the metadata DB's last committed write transaction.
func txID(t testing.TB, e *env) int {
	t.Helper()
	var id int
	if err := e.b.DB.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestConcurrentSamePullsCommitOnce: N callers of one shared pull write the records once (one
// metadata commit), not once each; a re-pull of an unchanged image writes nothing; the lease
// still ends (one commit) and nothing leaks.
func TestConcurrentSamePullsCommitOnce(t *testing.T) {
	const n = 16
	var e *env
	var sh *sharedPulls
	var afterPull int
	want := n // callers the shared pull waits for before it hands out its result
	sh, wrap := newShared(func() {
		for range want {
			<-sh.joined
		}
		afterPull = txID(t, e)
	}, n)
	e = newEnv(t, envOpts{images: map[string]v1.Image{"a": testImage(t, 1, "")}, wrap: wrap})
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = e.pull(t, "a")
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("image refs differ: %v", ids)
		}
	}
	if got := e.list(t); len(got) != 1 || len(got[0].RepoTags) != 1 || len(got[0].RepoDigests) != 1 {
		t.Fatalf("List = %v", got)
	}
	// After the shared pull: one commit for the records, one for the lease's end.
	if got := txID(t, e) - afterPull; got != 2 {
		t.Fatalf("%d callers of one pull: %d metadata commits after it, want 2 (records once, lease end)", n, got)
	}
	// A re-pull of an unchanged image writes no record: only the lease's end commits.
	want = 1
	e.pull(t, "a")
	if got := txID(t, e) - afterPull; got != 1 {
		t.Fatalf("re-pull of an unchanged image: %d metadata commits after the pull, want 1 (lease end)", got)
	}
	e.noLeaks(t)
}
