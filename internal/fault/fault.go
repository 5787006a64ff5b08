// Package fault names the places in the engine and the storage where a test
// can make the process die on purpose, to prove that a kill at any of them
// loses no work and duplicates none.
//
// The environment variable FMTUNE_FAULT, read once when the process starts,
// arms one point by name; Point(name) then kills the process (SIGKILL, as
// `kill -9` would) the first time it is reached. Without the variable every
// Point is a comparison of two strings and nothing else.
package fault

import (
	"os"
	"strconv"
	"sync/atomic"
)

// Env is the environment variable that arms a fault point.
const Env = "FMTUNE_FAULT"

// The fault points. Each is reached once per trial (or per re-queue) on the
// way a trial goes through the engine and the storage.
const (
	// AfterClaim: a trial is RUNNING (claimed or created) but its
	// parameters are not stored yet (a queued one has them only in
	// fixed_params).
	AfterClaim = "after-claim"
	// AfterParams: the parameters are stored, no epoch is reported yet.
	AfterParams = "after-params"
	// AfterLastReport: every epoch is reported, the trial is not complete.
	AfterLastReport = "after-last-report"
	// DuringCompletion: the result's attributes and value are written, the
	// final state is not.
	DuringCompletion = "during-completion"
	// DuringRequeue: inside the storage transaction that marks a trial FAIL
	// and queues its retry, between the two (the transaction never commits).
	DuringRequeue = "during-requeue"
)

// AfterCheckpoint, armed as "after-checkpoint:N", is reached when a trial's
// checkpoint after epoch N is stored (see PointAt).
const AfterCheckpoint = "after-checkpoint"

// Points lists every fault point.
var Points = []string{AfterClaim, AfterParams, AfterLastReport, DuringCompletion, DuringRequeue}

// SignalEnv, set to "INT", makes an armed point send the process SIGINT
// (a Ctrl-C) instead of SIGKILL, once, and carry on.

const SignalEnv = "FMTUNE_FAULT_SIGNAL"

// armed is the point named by FMTUNE_FAULT at start-up ("" for none).
var (
	armed     = os.Getenv(Env)
	interrupt = os.Getenv(SignalEnv) == "INT"
	fired     atomic.Bool
)

// Armed reports the armed point, "" for none.
func Armed() string { return armed }

// Point kills this process when name is the armed fault point.
func Point(name string) {
	if armed == "" || armed != name {
		return
	}
	p, err := os.FindProcess(os.Getpid())
	if interrupt {
		if err == nil && !fired.Swap(true) {
			_ = p.Signal(os.Interrupt)
		}
		return
	}
	if err == nil {
		_ = p.Kill()
	}
	select {} // the signal is on its way
}

// PointAt is Point for the point armed as "name:n" (a point reached once per
// epoch, say).
func PointAt(name string, n int) {
	if armed != "" {
		Point(name + ":" + strconv.Itoa(n))
	}
}
