package study

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/search"
)

// A Plan is an experiment written down: the studies it uses and the steps
// that fill them (manual runs, tuning, the best configuration of one study
// trained in another, comparisons). Running a plan again continues it:
// finished steps are skipped.
type Plan struct {
	Description string              `yaml:"description"`
	Storage     string              `yaml:"storage"`
	Data        string              `yaml:"data"`
	Defaults    SpecKeys            `yaml:"defaults"`
	Studies     map[string]SpecKeys `yaml:"studies"`
	Steps       []PlanStep          `yaml:"steps"`
}

// PlanStep is one step; exactly one of its fields is set.
type PlanStep struct {
	Manual  *ManualStep `yaml:"manual"`
	Tune    *TuneStep   `yaml:"tune"`
	BestOf  *BestOfStep `yaml:"best_of"`
	Compare []string    `yaml:"compare"`
}

// ManualStep trains one hand-picked configuration in a study.
type ManualStep struct {
	Study     string  `yaml:"study"`
	Optimizer string  `yaml:"optimizer"`
	LR        float64 `yaml:"lr"`
	Batch     int     `yaml:"batch"`
	Epochs    int     `yaml:"epochs"`
	Seed      *int64  `yaml:"seed"`
}

// TuneStep runs a study to its target.
type TuneStep struct {
	Study  string `yaml:"study"`
	Trials int    `yaml:"trials"`
}

// BestOfStep trains the best configuration of study From as a manual run of
// study Study (another architecture, say).
type BestOfStep struct {
	Study  string `yaml:"study"`
	From   string `yaml:"from"`
	Epochs int    `yaml:"epochs"`
}

// StudyNames are the names of the plan's studies, sorted.
func (p *Plan) StudyNames() []string {
	names := make([]string, 0, len(p.Studies))
	for n := range p.Studies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// AttrPlanStep marks a trial with the plan step that made it, so a rerun of
// the plan knows the step is done.
const AttrPlanStep = "fmtune:plan_step"

// ReadPlan reads a plan file strictly: unknown keys and malformed steps are
// errors wrapping ErrInvalidSpec.
func ReadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	var p Plan
	if err := decodeStrict(b, &p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: plan %s is empty", ErrInvalidSpec, path)
		}
		return nil, fmt.Errorf("%w: plan %s: %v", ErrInvalidSpec, path, err)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%w: plan %s: %v", ErrInvalidSpec, path, err)
	}
	return &p, nil
}

// check validates every study spec and that every step names known studies.
func (p *Plan) check() error {
	if len(p.Steps) == 0 {
		return errors.New("it has no steps")
	}
	for name := range p.Studies {
		if _, err := p.Spec(name); err != nil {
			return err
		}
	}
	known := func(step int, name string) error {
		if _, ok := p.Studies[name]; !ok {
			return fmt.Errorf("step %d names study %q, which is not listed under studies", step+1, name)
		}
		return nil
	}
	for i, s := range p.Steps {
		n := 0
		var err error
		if s.Manual != nil {
			n++
			err = known(i, s.Manual.Study)
		}
		if s.Tune != nil {
			n++
			err = errors.Join(err, known(i, s.Tune.Study))
		}
		if s.BestOf != nil {
			n++
			err = errors.Join(err, known(i, s.BestOf.Study), known(i, s.BestOf.From))
		}
		if s.Compare != nil {
			n++
			for _, name := range s.Compare {
				err = errors.Join(err, known(i, name))
			}
		}
		if n != 1 {
			return fmt.Errorf("step %d must have exactly one of manual, tune, best_of, compare", i+1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Spec builds the spec of the plan's study name: DefaultSpec, then the
// plan's defaults, then the study's own keys (see BuildSpec).
func (p *Plan) Spec(name string) (Spec, error) {
	st, ok := p.Studies[name]
	if !ok {
		return Spec{}, fmt.Errorf("no study %q in the plan", name)
	}
	spec, err := BuildSpec(name, Layer{Keys: p.Defaults}, Layer{Keys: st})
	if err != nil {
		return Spec{}, fmt.Errorf("study %s: %w", name, err)
	}
	return spec, nil
}

// PlanOptions say how to run a plan.
type PlanOptions struct {
	RunOptions
	DataDir string
	// Overrides for quick checks (0: the plan's own).
	TrainLimit int
	MaxEpochs  int
	Version    string
	// Compare prints a comparison step.
	Compare func(names []string) error
	Log     io.Writer
}

// RunPlan runs the plan's steps in order, skipping those already done.
func RunPlan(ctx context.Context, store Store, p *Plan, opt PlanOptions) error {
	specs := map[string]Spec{}
	datasets := map[[2]int]*data.Dataset{}
	prepare := func(name string) (Spec, *data.Dataset, error) {
		if spec, ok := specs[name]; ok {
			return spec, datasets[[2]int{spec.Val, spec.TrainLimit}], nil
		}
		spec, err := p.Spec(name)
		if err != nil {
			return Spec{}, nil, err
		}
		if opt.TrainLimit > 0 {
			spec.TrainLimit = opt.TrainLimit
		}
		if opt.MaxEpochs > 0 {
			spec.Epochs = min(spec.Epochs, opt.MaxEpochs)
		}
		key := [2]int{spec.Val, spec.TrainLimit}
		ds := datasets[key]
		if ds == nil {
			dir, err := data.Locate(opt.DataDir)
			if err != nil {
				return Spec{}, nil, err
			}
			if ds, err = data.Load(dir, data.Options{Val: spec.Val, TrainLimit: spec.TrainLimit}); err != nil {
				return Spec{}, nil, err
			}
			datasets[key] = ds
		}
		spec.DataChecksum, spec.Version = ds.Checksum, opt.Version
		if spec, err = Prepare(store, spec); err != nil {
			return Spec{}, nil, err
		}
		if err := CheckData(spec, ds); err != nil {
			return Spec{}, nil, err
		}
		specs[name] = spec
		return spec, ds, nil
	}
	logf := func(format string, args ...any) {
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, format+"\n", args...)
		}
	}
	for i, step := range p.Steps {
		tag := "step " + strconv.Itoa(i+1)
		switch {
		case step.Manual != nil:
			m := step.Manual
			spec, ds, err := prepare(m.Study)
			if err != nil {
				return err
			}
			point := search.Point{LR: m.LR, Optimizer: m.Optimizer, Batch: m.Batch}
			if err := runPlanManual(ctx, store, ds, spec, tag, point, m.Epochs, m.Seed, opt, logf); err != nil {
				return err
			}
		case step.BestOf != nil:
			b := step.BestOf
			if _, _, err := prepare(b.From); err != nil {
				return err
			}
			spec, ds, err := prepare(b.Study)
			if err != nil {
				return err
			}
			best, err := Best(store, b.From)
			if err != nil {
				return fmt.Errorf("%s: best of %s: %w", tag, b.From, err)
			}
			point, err := search.PointFromParams(best.Params)
			if err != nil {
				return fmt.Errorf("%s: best of %s: %w", tag, b.From, err)
			}
			logf("%s: the best configuration of %s (trial %d, %s) on %s", tag, b.From, best.Number, point, b.Study)
			if err := runPlanManual(ctx, store, ds, spec, tag, point, b.Epochs, nil, opt, logf); err != nil {
				return err
			}
		case step.Tune != nil:
			spec, ds, err := prepare(step.Tune.Study)
			if err != nil {
				return err
			}
			if step.Tune.Trials > 0 && step.Tune.Trials != spec.Trials {
				if spec, err = SetTarget(store, spec.Name, step.Tune.Trials); err != nil {
					return err
				}
				specs[spec.Name] = spec
			}
			logf("%s: tune %s (%s, %s sampler, target %d trials)", tag, spec.Name, spec.Arch, spec.Sampler, spec.Target())
			out, err := Run(ctx, store, ds, spec, opt.RunOptions)
			if err != nil {
				return err
			}
			logf("%s: %s: %s, %d trials this run", tag, spec.Name, out.Reason, out.Finished)
		case step.Compare != nil:
			for _, name := range step.Compare {
				if _, _, err := prepare(name); err != nil {
					return err
				}
			}
			if opt.Compare != nil {
				if err := opt.Compare(step.Compare); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// runPlanManual runs a manual step unless a trial of the study already
// carries its tag and finished.
func runPlanManual(ctx context.Context, store Store, ds *data.Dataset, spec Spec, tag string, p search.Point, epochs int, seed *int64, opt PlanOptions, logf func(string, ...any)) error {
	trials, err := allTrials(store, spec.Name)
	if err != nil {
		return err
	}
	for _, t := range trials {
		if t.SystemAttrs[AttrPlanStep] == tag && t.State.IsFinished() && !requeued(t) {
			logf("%s: done before (trial %d of %s), skipped", tag, t.Number, spec.Name)
			return nil
		}
	}
	if epochs == 0 {
		epochs = spec.Epochs
	}
	if opt.MaxEpochs > 0 && epochs > opt.MaxEpochs {
		epochs = opt.MaxEpochs
	}
	m := Manual{Arch: spec.Arch, Point: p, Epochs: epochs, Seed: spec.Seed, Tag: tag}
	if seed != nil {
		m.Seed = *seed
	}
	logf("%s: manual %s in %s, %d epochs", tag, p, spec.Name, epochs)
	info, err := RunManual(ctx, store, ds, spec, m, opt.RunOptions)
	if err != nil {
		return err
	}
	logf("%s: trial %d %s: val %s test %s", tag, info.Number, info.State, floatText(info.ValAcc), floatText(info.TestAcc))
	return nil
}

func floatText(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 4, 64)
}
