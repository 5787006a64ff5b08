package study

// No repeated configurations: in a finite space the sampler's proposal is
// taken from the configurations the study has not tried yet (or tried fewer
// times than Spec.Repeats asks), decided in the transaction that creates
// the trial, so no two workers of any process pick the same one.

import (
	"math/rand/v2"
	"strconv"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// ReasonExhausted is the Outcome.Reason of a study that has tried every
// configuration of its finite space (as many times as it repeats them).
const ReasonExhausted = "space exhausted"

// Trial system attributes of the no-repeat rule.
const (
	// AttrInsteadOf is set on a trial TPE would have spent on a
	// configuration already tried: the configuration it proposed.
	AttrInsteadOf = "fmtune:instead_of"
	// AttrRepeat numbers the repeats of a configuration (1..Spec.Repeats)
	// in a study that repeats them.
	AttrRepeat = "fmtune:repeat"
)

// preference is the order in which the sampler would take the study's
// configurations, computed from the trials as they were just before a
// worker acquires its next trial.
type preference struct {
	order []search.Point
	// tpe: order[0] is TPE's own proposal (past its random start-up).
	tpe bool
	// known are the points of the trials read then, by trial ID; trials
	// created since carry theirs in fixed_params.
	known map[int]search.Point
}

// dedupes reports whether the runner picks configurations itself (a finite
// space searched by TPE or random; the grid queues its points instead).
func (r *runner) dedupes() bool { return r.spec.Sampler != "grid" && r.spec.Space.Finite() }

// prefer reads the study's trials and orders its configurations: TPE's
// order of l(x)/g(x), or a random order (the random sampler, and TPE
// during its random start-up) drawn from the study seed and the number of
// trials.
func (r *runner) prefer() (*preference, error) {
	trials, err := r.store.GetAllTrials(r.study.ID)
	if err != nil {
		return nil, err
	}
	p := &preference{known: make(map[int]search.Point, len(trials))}
	for _, t := range trials {
		if pt, err := r.pointOf(t); err == nil {
			p.known[t.ID] = pt
		}
	}
	if r.spec.Sampler == "tpe" {
		p.order, p.tpe = search.TPEOrder(r.spec.Space, trials, r.study.Direction())
	}
	if !p.tpe {
		rng := rand.New(rand.NewPCG(uint64(r.spec.Seed), uint64(len(trials))))
		p.order = search.RandomOrder(r.spec.Space, rng)
	}
	return p, nil
}

// next decides, from the trials as the acquiring transaction sees them,
// the trial to create: the first configuration of the order that has been
// tried fewer than repeats times (its further repeats queued with it), or
// false when every configuration has been. Every trial counts as a try
// (manual ones too, running and queued ones too) except a failed trial
// whose retry is in the study: the retry counts instead.
func (p *preference) next(r *runner, trials []goptuna.FrozenTrial) (storage.Pick, bool) {
	retried := map[string]bool{}
	for _, t := range trials {
		if of := t.SystemAttrs[AttrRetryOf]; of != "" {
			retried[of] = true
		}
	}
	tried := map[search.Point]int{}
	for _, t := range trials {
		if t.State == goptuna.TrialStateFail && retried[strconv.Itoa(t.Number)] {
			continue
		}
		pt, ok := p.known[t.ID]
		if !ok {
			text, fixed := t.SystemAttrs[attrFixed]
			if !fixed {
				continue // no parameters yet, nor ever (a trial that failed before sampling)
			}
			var err error
			if pt, err = pointFromFixed(r.spec.Space, text); err != nil {
				continue
			}
		}
		tried[pt]++
	}
	repeats := r.spec.repeats()
	for _, pt := range p.order {
		if tried[pt] >= repeats {
			continue
		}
		first, err := fixedTrial(r.study.ID, r.spec.Space, Queued{Point: pt, Source: SourceSampled, RetryOf: -1}, goptuna.TrialStateRunning)
		if err != nil {
			return storage.Pick{}, false
		}
		if p.tpe && pt != p.order[0] {
			first.SystemAttrs[AttrInsteadOf] = p.order[0].String()
		}
		pick := storage.Pick{Action: storage.PickCreate, Template: &first}
		if repeats > 1 {
			first.SystemAttrs[AttrRepeat] = strconv.Itoa(tried[pt] + 1)
			for k := tried[pt] + 2; k <= repeats; k++ {
				q, err := fixedTrial(r.study.ID, r.spec.Space, Queued{Point: pt, Source: SourceSampled, RetryOf: -1}, goptuna.TrialStateWaiting)
				if err != nil {
					return storage.Pick{}, false
				}
				q.SystemAttrs[AttrRepeat] = strconv.Itoa(k)
				pick.Queue = append(pick.Queue, q)
			}
		}
		return pick, true
	}
	return storage.Pick{}, false
}
