package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A Team runs the chunks of one piece of work on up to Threads goroutines:
// the caller's and idle helpers from a process-wide pool of
// GOMAXPROCS-1 goroutines, so all the teams of a process together never
// use more threads than there are cores. Work is always split into the
// same chunks, whatever the number of threads, and each chunk does the
// same arithmetic, so results do not depend on the thread count.
//
// A Team is used by one goroutine at a time. Run allocates nothing.
type Team struct {
	// Threads is the most threads Run uses; 0 means automatic: the cores
	// shared equally among the Teams that are currently Active.
	Threads int
	active  bool
	job     job
}

// activeTeams counts the Teams between Activate and Deactivate.
var activeTeams atomic.Int32

// Activate counts t among the teams sharing the cores (automatic Threads).
func (t *Team) Activate() {
	if !t.active {
		t.active = true
		activeTeams.Add(1)
	}
}

// Deactivate gives t's share of the cores back.
func (t *Team) Deactivate() {
	if t.active {
		t.active = false
		activeTeams.Add(-1)
	}
}

// Size is the number of threads Run would use now.
func (t *Team) Size() int {
	cores := runtime.GOMAXPROCS(0)
	n := t.Threads
	if n <= 0 {
		n = cores / max(int(activeTeams.Load()), 1)
	}
	return max(1, min(n, cores))
}

// Run calls fn(c) for every chunk c in [0, n), spread over the team's
// threads, and returns when all are done. fn must be safe to call for
// different chunks at once; a method value stored once avoids allocating.
func (t *Team) Run(n int, fn func(chunk int)) {
	size := t.Size()
	if n <= 1 || size == 1 {
		for c := range n {
			fn(c)
		}
		return
	}
	j := &t.job
	j.fn, j.n = fn, int64(n)
	j.next.Store(0)
	p := helpers()
	for range min(size, n) - 1 {
		select {
		case h := <-p:
			j.wg.Add(1)
			h <- j
			continue
		default:
		}
		break
	}
	j.work()
	j.wg.Wait()
	j.fn = nil
}

type job struct {
	fn   func(int)
	n    int64
	next atomic.Int64
	wg   sync.WaitGroup
}

// work runs chunks until none are left.
func (j *job) work() {
	for {
		c := j.next.Add(1) - 1
		if c >= j.n {
			return
		}
		j.fn(int(c))
	}
}

var (
	poolOnce sync.Once
	idle     chan chan *job // idle helpers, each waiting on its own channel
)

// helpers returns the pool of idle helpers, starting GOMAXPROCS-1 of them
// on first use.
func helpers() chan chan *job {
	poolOnce.Do(func() {
		n := max(runtime.GOMAXPROCS(0)-1, 0)
		idle = make(chan chan *job, n)
		for range n {
			h := make(chan *job)
			go func() {
				for j := range h {
					j.work()
					j.wg.Done()
					idle <- h
				}
			}()
			idle <- h
		}
	})
	return idle
}

// Chunks is the number of chunks of size size that cover n items.
func Chunks(n, size int) int { return (n + size - 1) / size }
