package study

// The names the engine writes into the storage, and its time constants.

import (
	"time"

	"github.com/fmtune/fmtune/storage"
)

// Trial system attributes written by the engine. fail_reason is Optuna's own.
const (
	AttrFailReason = "fail_reason"
	AttrSource     = "fmtune:source"   // sampled, grid, manual or retry
	AttrRetryOf    = "fmtune:retry_of" // number of the trial this one retries
	AttrEpochs     = "fmtune:epochs"   // epochs of a manual trial, when not the study's
	AttrSeed       = "fmtune:seed"     // training seed of a manual trial
	AttrWorker     = "fmtune:worker"   // host:pid/goroutine of the worker that ran the trial
	// AttrFailKind says why a FAIL trial failed, for the engine to read
	// (fail_reason is for people): storage.FailKindStale or FailKindInterrupted.
	AttrFailKind = storage.AttrFailKind
	attrFixed    = "fixed_params" // goptuna's (and Optuna's) enqueued parameters
	readyAttr    = "fmtune:ready" // study attr: spec stored and grid enqueued
)

// Failure kinds (AttrFailKind) whose trials' parameters went back to the
// queue: such a trial does not count toward the study's target.
const (
	FailKindInterrupted = "interrupted"
	FailKindStale       = storage.FailKindStale
)

// ReasonInterrupted is the fail_reason of a trial stopped by Ctrl-C.
const ReasonInterrupted = "interrupted"

// Sources of a trial's parameters.
const (
	SourceSampled = "sampled"
	SourceGrid    = "grid"
	SourceManual  = "manual"
	SourceRetry   = "retry"
)

// DefaultHeartbeat is how often a running trial records that it is alive.
// A trial whose last heartbeat is older than StaleAfter(interval) is taken
// for dead.
const DefaultHeartbeat = 10 * time.Second

// StaleAfter is the grace period after which a silent trial is dead.
func StaleAfter(interval time.Duration) time.Duration { return 4 * interval }

// DefaultStoragePatience is how long a run waits for an unreachable storage
// (a PostgreSQL server restarting, a network cut) before it gives up.
const DefaultStoragePatience = 5 * time.Minute

// Waits between attempts while the storage is unreachable: doubling from
// outageFirstWait up to outageMaxWait.
const (
	outageFirstWait = time.Second
	outageMaxWait   = 30 * time.Second
)
