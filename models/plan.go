package models

import (
	"fmt"
	"slices"
	"time"

	G "gorgonia.org/gorgonia"
)

// plan runs a gorgonia graph: its operators in dependency order, each on
// the values of its inputs, with every argument list laid out once. It
// does what gorgonia's TapeMachine does for these graphs (the tests check
// that both give bitwise the same training) without its cost per run:
// TapeMachine.RunAll starts a goroutine and two channels and hands the
// work to another OS thread and back (two futex wake-ups), and appends
// each instruction's inputs to a new slice. A plan run allocates nothing.
type plan struct {
	timed bool // record each step's time in planStep.took (for benchmarks)
	steps []planStep
	vals  []G.Value     // each node's current value, in execution order
	index map[int64]int // node ID -> position in vals
}

type planStep struct {
	op   G.Op
	in   []int         // positions of the inputs in vals
	args []G.Value     // the argument list, refilled before each call
	out  int           // position of the result in vals
	name string        // the node, for errors
	took time.Duration // with plan.timed: the time spent in op
}

// newPlan orders g's nodes so that every node comes after its inputs.
// Leaves (inputs, weights, constants) must have values; their tensors are
// filled in place between runs.
func newPlan(g *G.ExprGraph) (*plan, error) {
	sorted, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("sort graph: %w", err)
	}
	slices.Reverse(sorted) // Sort puts the outputs first
	p := &plan{vals: make([]G.Value, len(sorted)), index: make(map[int64]int, len(sorted))}
	for i, n := range sorted {
		p.index[n.ID()] = i
		children := g.From(n.ID())
		if children.Len() == 0 {
			if n.Value() == nil {
				return nil, fmt.Errorf("leaf %v has no value", n)
			}
			p.vals[i] = n.Value()
			continue
		}
		st := planStep{op: n.Op(), out: i, args: make([]G.Value, children.Len()), name: n.Name()}
		for children.Next() {
			j, ok := p.index[children.Node().ID()]
			if !ok {
				return nil, fmt.Errorf("node %v comes before its input", n)
			}
			st.in = append(st.in, j)
		}
		p.steps = append(p.steps, st)
	}
	return p, nil
}

// run computes every node once.
func (p *plan) run() error {
	for k := range p.steps {
		s := &p.steps[k]
		for a, j := range s.in {
			s.args[a] = p.vals[j]
		}
		var start time.Time
		if p.timed {
			start = time.Now()
		}
		v, err := s.op.Do(s.args...)
		if p.timed {
			s.took += time.Since(start)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		p.vals[s.out] = v
	}
	return nil
}

// value is n's value after the last run.
func (p *plan) value(n *G.Node) G.Value { return p.vals[p.index[n.ID()]] }
