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
	cores := MaxThreads()
	n := t.Threads
	if n <= 0 {
		n = cores / max(int(activeTeams.Load()), 1)
	}
	return max(1, min(n, cores))
}

// Run calls fn(c, w) for every chunk c in [0, n), spread over the team's
// threads, and returns when all are done. w, in [0, MaxThreads()), tells
// which thread runs the chunk (for per-thread scratch buffers); no two
// chunks run on one w at once. fn must be safe to call for different
// chunks at once; a method value stored once avoids allocating.
func (t *Team) Run(n int, fn func(chunk, worker int)) {
	size := t.Size()
	if n <= 1 || size == 1 {
		for c := range n {
			fn(c, 0)
		}
		return
	}
	j := &t.job
	j.fn, j.n = fn, int64(n)
	j.next.Store(0)
	p := helpers()
	for w := 1; w < min(size, n); w++ {
		select {
		case h := <-p:
			j.wg.Add(1)
			h <- handoff{j, w}
			continue
		default:
		}
		break
	}
	j.work(0)
	j.wg.Wait()
	j.fn = nil
}

// MaxThreads is the most threads any Team runs: GOMAXPROCS at first use.
func MaxThreads() int { return cap(helpers()) + 1 }

type job struct {
	fn   func(chunk, worker int)
	n    int64
	next atomic.Int64
	wg   sync.WaitGroup
}

// work runs chunks until none are left.
func (j *job) work(worker int) {
	for {
		c := j.next.Add(1) - 1
		if c >= j.n {
			return
		}
		j.fn(int(c), worker)
	}
}

// handoff gives a helper a job and its worker number.
type handoff struct {
	j      *job
	worker int
}

var (
	poolOnce sync.Once
	idle     chan chan handoff // idle helpers, each waiting on its own channel
)

// helpers returns the pool of idle helpers, starting GOMAXPROCS-1 of them
// on first use.
func helpers() chan chan handoff {
	poolOnce.Do(func() {
		n := max(runtime.GOMAXPROCS(0)-1, 0)
		idle = make(chan chan handoff, n)
		for range n {
			h := make(chan handoff)
			go func() {
				for ho := range h {
					ho.j.work(ho.worker)
					ho.j.wg.Done()
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
