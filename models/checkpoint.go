package models

// Checkpoints: the whole state of a training at the end of an epoch, so that
// training can continue from it and end exactly as an uninterrupted run.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Checkpoint is a training's state after Epoch epochs: the configuration it
// trains, the learning curve so far, the weights, the optimizer's state and
// the dropout generator's state. (Each epoch's shuffle derives from the
// seed and the epoch, so it needs no state.) Continuing from it
// (Hooks.Resume) with the same thread count gives bitwise the same curve
// and weights as training without a stop.
type Checkpoint struct {
	Arch      string
	Optimizer string
	LR        float64
	Momentum  float64
	Batch     int
	Seed      int64
	Epoch     int
	History   []EpochStats
	Weights   []float32
	Solver    SolverState
	Dropout   [2]uint64 // PCG state (hi, lo)
}

// SolverState is an optimizer's state: its step count, Nadam's running
// momentum product, and its per-weight slots (Adam and Nadam: m then v;
// RMSprop: v; SGD with momentum: the velocity; plain SGD: none).
type SolverState struct {
	Step     int         `json:"step"`
	UProduct float64     `json:"u_product,omitempty"`
	Slots    [][]float32 `json:"-"`
}

// ErrBadCheckpoint is matched by every error of UnmarshalCheckpoint and of
// resuming from a checkpoint that does not fit the configuration.
var ErrBadCheckpoint = errors.New("bad checkpoint")

const checkpointMagic = "FMTCKPT1"

// checkpointHeader is the JSON part of the encoding.
type checkpointHeader struct {
	Arch      string       `json:"arch"`
	Optimizer string       `json:"optimizer"`
	LR        float64      `json:"lr"`
	Momentum  float64      `json:"momentum,omitempty"`
	Batch     int          `json:"batch"`
	Seed      int64        `json:"seed"`
	Epoch     int          `json:"epoch"`
	History   []EpochStats `json:"history"`
	Weights   int          `json:"weights"`
	Solver    SolverState  `json:"solver"`
	Slots     []int        `json:"slots"`
	Dropout   [2]uint64    `json:"dropout"`
}

// MarshalBinary encodes c: "FMTCKPT1", the length of a JSON header (uint32,
// little-endian), the header, the weights and then each optimizer slot as
// little-endian float32, and a CRC-32 (IEEE) of all that precedes it.
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	h := checkpointHeader{Arch: c.Arch, Optimizer: c.Optimizer, LR: c.LR, Momentum: c.Momentum, Batch: c.Batch,
		Seed: c.Seed, Epoch: c.Epoch, History: c.History, Weights: len(c.Weights), Solver: c.Solver, Dropout: c.Dropout}
	n := len(c.Weights)
	for _, s := range c.Solver.Slots {
		h.Slots = append(h.Slots, len(s))
		n += len(s)
	}
	head, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	out := make([]byte, 0, len(checkpointMagic)+4+len(head)+4*n+4)
	out = append(out, checkpointMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(head)))
	out = append(out, head...)
	out = appendFloats(out, c.Weights)
	for _, s := range c.Solver.Slots {
		out = appendFloats(out, s)
	}
	return binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(out)), nil
}

func appendFloats(out []byte, v []float32) []byte {
	for _, x := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
	}
	return out
}

// UnmarshalCheckpoint decodes what MarshalBinary wrote, checking its
// integrity.
func UnmarshalCheckpoint(b []byte) (*Checkpoint, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadCheckpoint, fmt.Sprintf(format, args...))
	}
	if len(b) < len(checkpointMagic)+8 || !bytes.Equal(b[:len(checkpointMagic)], []byte(checkpointMagic)) {
		return nil, bad("not an fmtune checkpoint (%d bytes)", len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, bad("checksum mismatch (damaged or truncated)")
	}
	rest := body[len(checkpointMagic):]
	hl := int(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if hl > len(rest) {
		return nil, bad("header length %d past the end", hl)
	}
	var h checkpointHeader
	if err := json.Unmarshal(rest[:hl], &h); err != nil {
		return nil, bad("header: %v", err)
	}
	rest = rest[hl:]
	take := func(n int) ([]float32, error) {
		if n < 0 || 4*n > len(rest) {
			return nil, bad("%d values past the end", n)
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(rest[4*i:]))
		}
		rest = rest[4*n:]
		return v, nil
	}
	c := &Checkpoint{Arch: h.Arch, Optimizer: h.Optimizer, LR: h.LR, Momentum: h.Momentum, Batch: h.Batch,
		Seed: h.Seed, Epoch: h.Epoch, History: h.History, Solver: h.Solver, Dropout: h.Dropout}
	var err error
	if c.Weights, err = take(h.Weights); err != nil {
		return nil, err
	}
	for _, n := range h.Slots {
		s, err := take(n)
		if err != nil {
			return nil, err
		}
		c.Solver.Slots = append(c.Solver.Slots, s)
	}
	if len(rest) != 0 {
		return nil, bad("%d bytes left over", len(rest))
	}
	if c.Epoch < 1 || len(c.History) != c.Epoch {
		return nil, bad("epoch %d with %d epochs of history", c.Epoch, len(c.History))
	}
	return c, nil
}

// Continues reports why c cannot continue a training of cfg whatever
// cfg's seed (a retry takes the checkpoint's), or nil.
func (c *Checkpoint) Continues(cfg Config) error {
	cfg.Seed = c.Seed
	return c.fits(cfg, len(c.Weights))
}

// fits reports why c cannot continue a training of cfg, or nil.
func (c *Checkpoint) fits(cfg Config, params int) error {
	switch {
	case c.Arch != cfg.Arch || c.Optimizer != cfg.Optimizer || c.LR != cfg.LR || c.Momentum != cfg.Momentum ||
		c.Batch != cfg.Batch || c.Seed != cfg.Seed:
		return fmt.Errorf("%w: it trains arch %s, %s lr %g, batch %d, seed %d, not arch %s, %s lr %g, batch %d, seed %d",
			ErrBadCheckpoint, c.Arch, c.Optimizer, c.LR, c.Batch, c.Seed, cfg.Arch, cfg.Optimizer, cfg.LR, cfg.Batch, cfg.Seed)
	case c.Epoch >= cfg.Epochs:
		return fmt.Errorf("%w: it is at epoch %d of a training of %d epochs", ErrBadCheckpoint, c.Epoch, cfg.Epochs)
	case len(c.Weights) != params:
		return fmt.Errorf("%w: %d weights for a model of %d", ErrBadCheckpoint, len(c.Weights), params)
	}
	return nil
}

// checkpoint captures the trainer's state after epoch (the buffers are
// shared, not copied: it is valid until training goes on).
func (t *trainer) checkpoint(cfg Config, epoch int, history []EpochStats, r *randSource) *Checkpoint {
	hi, lo := r.drop.State()
	return &Checkpoint{Arch: cfg.Arch, Optimizer: cfg.Optimizer, LR: cfg.LR, Momentum: cfg.Momentum, Batch: cfg.Batch,
		Seed: cfg.Seed, Epoch: epoch, History: history, Weights: t.model.flat, Solver: t.solver.state(), Dropout: [2]uint64{hi, lo}}
}

// restore puts the trainer in c's state.
func (t *trainer) restore(c *Checkpoint, r *randSource) error {
	if err := t.solver.restore(c.Solver); err != nil {
		return err
	}
	copy(t.model.flat, c.Weights)
	r.drop.SetState(c.Dropout[0], c.Dropout[1])
	return nil
}

// state and restore of each optimizer (see SolverState).

func (s *SGDSolver) state() SolverState { return SolverState{Slots: s.velocity} }
func (s *SGDSolver) restore(st SolverState) error {
	return restoreSlots(st, []slotState{s.velocity})
}

func (s *AdamSolver) state() SolverState {
	return SolverState{Step: s.t, Slots: append(append([][]float32{}, s.m...), s.v...)}
}
func (s *AdamSolver) restore(st SolverState) error {
	if err := restoreSlots(st, []slotState{s.m, s.v}); err != nil {
		return err
	}
	s.t = st.Step
	return nil
}

func (s *NadamSolver) state() SolverState {
	return SolverState{Step: s.t, UProduct: s.uProduct, Slots: append(append([][]float32{}, s.m...), s.v...)}
}
func (s *NadamSolver) restore(st SolverState) error {
	if err := restoreSlots(st, []slotState{s.m, s.v}); err != nil {
		return err
	}
	s.t, s.uProduct = st.Step, st.UProduct
	return nil
}

func (s *RMSpropSolver) state() SolverState { return SolverState{Slots: s.v} }
func (s *RMSpropSolver) restore(st SolverState) error {
	return restoreSlots(st, []slotState{s.v})
}

// restoreSlots copies st's slots into the prepared slot states, in order.
func restoreSlots(st SolverState, into []slotState) error {
	var dst [][]float32
	for _, s := range into {
		dst = append(dst, s...)
	}
	if len(dst) != len(st.Slots) {
		return fmt.Errorf("%w: %d optimizer slots for an optimizer of %d", ErrBadCheckpoint, len(st.Slots), len(dst))
	}
	for i := range dst {
		if len(dst[i]) != len(st.Slots[i]) {
			return fmt.Errorf("%w: optimizer slot %d has %d values, not %d", ErrBadCheckpoint, i, len(st.Slots[i]), len(dst[i]))
		}
		copy(dst[i], st.Slots[i])
	}
	return nil
}
