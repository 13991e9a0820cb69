package importer

import (
	"context"
	"errors"
	"sync"

	"patchtree/store"
)

// errStagingStopped is what a row's producer gets once the stager has stopped taking rows.
var errStagingStopped = errors.New("staging stopped")

// rowQueue carries a plan's rows from their producer (the parse, or makePlan) to the batcher.
// With a bound, put waits while that many rows are queued, so a producer faster than the
// publish entries holds no more than a couple of batches; without one it never waits.
type rowQueue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	rows      []sized
	head      int
	bound     int // 0: unbounded
	closed    bool
	abandoned bool
	// waiting, when set, is told when put starts and stops waiting for room.
	waiting func(bool)
}

func newRowQueue(bound int) *rowQueue {
	q := &rowQueue{bound: bound}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// put queues a row, waiting for room; errStagingStopped once the queue is abandoned.
func (q *rowQueue) put(s sized) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.full() && q.waiting != nil {
		q.waiting(true)
		defer q.waiting(false)
	}
	for q.full() {
		q.cond.Wait()
	}
	if q.abandoned {
		return errStagingStopped
	}
	q.rows = append(q.rows, s)
	q.cond.Broadcast()
	return nil
}

// full reports whether put must wait for room (q.mu held).
func (q *rowQueue) full() bool {
	return q.bound > 0 && len(q.rows)-q.head >= q.bound && !q.abandoned
}

// close marks the end of the rows: the plan is complete.
func (q *rowQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// abandon ends the queue early: the plan will not be complete, and what is queued is dropped.
func (q *rowQueue) abandon() {
	q.mu.Lock()
	q.abandoned = true
	q.rows, q.head = nil, 0
	q.cond.Broadcast()
	q.mu.Unlock()
}

// take returns the next row, waiting for one. ok is false at the end of the rows; complete
// tells a closed queue (the plan's deletions follow) from an abandoned one.
func (q *rowQueue) take() (s sized, ok, complete bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.rows) && !q.closed && !q.abandoned {
		q.cond.Wait()
	}
	if q.abandoned {
		return sized{}, false, false
	}
	if q.head == len(q.rows) {
		return sized{}, false, true
	}
	s = q.rows[q.head]
	q.rows[q.head] = sized{} // the batch holds the row from here on
	q.head++
	if q.head == len(q.rows) {
		q.rows, q.head = q.rows[:0], 0
	} else if q.head >= 1024 && 2*q.head >= len(q.rows) {
		n := copy(q.rows, q.rows[q.head:])
		clear(q.rows[n:])
		q.rows, q.head = q.rows[:n], 0
	}
	q.cond.Broadcast()
	return s, true, false
}

// stager stages a run's rows in publish entries on its own goroutine, as they are queued:
// while the feed is still being parsed (a streamed import) or once the plan is made.
type stager struct {
	rows    *rowQueue
	plan    *plan
	done    chan struct{}
	started bool

	// Set when done is closed.
	staged bool
	err    error
}

func newStager(bound int) *stager {
	return &stager{rows: newRowQueue(bound), plan: &plan{}, done: make(chan struct{})}
}

// start stages what is queued, and what will be, until the queue ends.
func (im *Importer) start(ctx context.Context, r *run, st *stager) {
	st.started = true
	go func() {
		defer close(st.done)
		st.staged, st.err = im.stageAll(ctx, r, newBatcher(st.plan, st.rows, im.cfg.MaxBatchBytes, im.cfg.MaxBatchRows))
		if st.err != nil {
			st.rows.abandon() // the producer stops at its next row
		}
	}()
}

// emit queues a row of the plan.
func (st *stager) emit(s sized) error { return st.rows.put(s) }

// finish ends the rows, the plan being complete, and waits until every batch is in the log.
func (st *stager) finish() (staged bool, err error) {
	st.rows.close()
	<-st.done
	return st.staged, st.err
}

// stop ends a run whose plan will not be complete: staging stops after the entries in flight.
// It returns whether anything was staged, for the abort, and staging's own failure, which may
// be what stopped the run.
func (st *stager) stop() (staged bool, err error) {
	st.rows.abandon()
	if !st.started {
		return false, nil
	}
	<-st.done
	return st.staged, st.err
}

// batcher cuts a plan into batches of at most maxBytes (estimated) and maxRows records: the
// rows as they are queued, then, once the queue is closed (the plan complete), the deletions,
// one at a time. Each row leaves the queue as its batch is cut, so a row is held by the
// queue or by the one batch being staged.
type batcher struct {
	p                 *plan
	rows              *rowQueue
	held              *sized // the row that did not fit the last batch
	maxBytes, maxRows int
	delB, delU        int
}

// newBatcher cuts p into batches; p's deletions are read only after rows is closed.
func newBatcher(p *plan, rows *rowQueue, maxBytes, maxRows int) *batcher {
	return &batcher{p: p, rows: rows, maxBytes: maxBytes, maxRows: maxRows}
}

// next returns the next batch, or nil when the plan is used up or abandoned. It waits for rows.
func (bt *batcher) next() *store.CatalogBatch {
	cur := &store.CatalogBatch{Tombstones: true} // children learn of deletions through tombstones
	size, rows := 0, 0
	fits := func(n, cost int) bool {
		if rows > 0 && (size+n > bt.maxBytes || rows+cost > bt.maxRows) {
			return false
		}
		size, rows = size+n, rows+cost
		return true
	}
	for {
		var r sized
		if bt.held != nil {
			r, bt.held = *bt.held, nil
		} else {
			next, ok, complete := bt.rows.take()
			if !ok && !complete {
				return nil // abandoned: what is cut so far is not part of any plan
			}
			if !ok {
				break
			}
			r = next
		}
		// One record costs one row in each of its table's two trees; what a bulletin's update
		// list costs (its tag digests) is in its bytes.
		if !fits(r.size+160, 1) { // row JSON plus feed, hash and indexes
			bt.held = &r
			return cur
		}
		if r.bulletin != nil {
			cur.Bulletins = append(cur.Bulletins, r.bulletin)
		} else {
			cur.Updates = append(cur.Updates, r.update)
		}
	}
	p := bt.p
	for ; bt.delB < len(p.deleteBulletins); bt.delB++ {
		id := p.deleteBulletins[bt.delB]
		if !fits(len(id)+4, 1) {
			return cur
		}
		cur.DeleteBulletins = append(cur.DeleteBulletins, id)
	}
	for ; bt.delU < len(p.deleteUpdates); bt.delU++ {
		id := p.deleteUpdates[bt.delU]
		if !fits(len(id)+4, 1) {
			return cur
		}
		cur.DeleteUpdates = append(cur.DeleteUpdates, id)
	}
	if rows == 0 {
		return nil
	}
	return cur
}
