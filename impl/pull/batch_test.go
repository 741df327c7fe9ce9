package pull

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/criimage/criimage/impl/backend"
)

// TestTxBatcherIsolatesFailures: concurrent updates share transactions, and one failing call
// fails alone (its writes rolled back), the others commit.
func TestTxBatcherIsolatesFailures(t *testing.T) {
	t.Parallel()
	b, err := backend.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	tb := &txBatcher{db: b.DB}
	bucket := []byte("criimage-batch-test")
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tb.update(func(tx *bolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists(bucket)
				if err != nil {
					return err
				}
				if err := bk.Put(fmt.Appendf(nil, "k%d", i), []byte("v")); err != nil {
					return err
				}
				if i%10 == 3 {
					return boom
				}
				return nil
			})
		}()
	}
	wg.Wait()
	err = b.DB.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		for i, e := range errs {
			has := bk != nil && bk.Get(fmt.Appendf(nil, "k%d", i)) != nil
			switch {
			case i%10 == 3 && (!errors.Is(e, boom) || has):
				return fmt.Errorf("call %d: err %v, key written %v; want boom, nothing written", i, e, has)
			case i%10 != 3 && (e != nil || !has):
				return fmt.Errorf("call %d: err %v, key written %v; want success", i, e, has)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
