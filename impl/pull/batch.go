package pull

import (
	"sync"

	"github.com/containerd/containerd/v2/core/metadata"
	bolt "go.etcd.io/bbolt"
)

// txBatcher coalesces concurrent metadata updates into one transaction (one commit, one fsync),
// as bolt's DB.Batch does: while a transaction commits, the next calls queue and then share the
// following one. Many callers of one flight each create and later delete a lease; one commit
// each was most of a burst of identical pulls. If a shared transaction fails, each of its calls
// is retried alone, so one call's error never fails another. Functions may run more than once
// (a failed shared transaction is rolled back) and must only touch the transaction.
type txBatcher struct {
	db      *metadata.DB
	mu      sync.Mutex
	pending []*txCall
	running bool
}

type txCall struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// update runs fn in a (possibly shared) write transaction and returns fn's outcome.
func (b *txBatcher) update(fn func(*bolt.Tx) error) error {
	c := &txCall{fn: fn, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	return <-c.done
}

func (b *txBatcher) run() {
	for {
		b.mu.Lock()
		calls := b.pending
		b.pending = nil
		if len(calls) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		if len(calls) == 1 {
			calls[0].done <- b.db.Update(calls[0].fn)
			continue
		}
		err := b.db.Update(func(tx *bolt.Tx) error {
			for _, c := range calls {
				if err := c.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		for _, c := range calls {
			if err != nil {
				c.done <- b.db.Update(c.fn)
			} else {
				c.done <- nil
			}
		}
	}
}
