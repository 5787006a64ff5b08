package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/numchoice"
)

// Optuna's enum values, exactly as SQLAlchemy stores them (the Python enum member names).
const (
	stateRunning  = "RUNNING"
	stateComplete = "COMPLETE"
	statePruned   = "PRUNED"
	stateFail     = "FAIL"
	stateWaiting  = "WAITING"

	directionMinimize = "MINIMIZE"
	directionMaximize = "MAXIMIZE"
	directionNotSet   = "NOT_SET"

	valueFinite = "FINITE"
	valueInfPos = "INF_POS"
	valueInfNeg = "INF_NEG"
	valueNaN    = "NAN" // trial_intermediate_values only
)

// failReasonKey is the trial system attribute that explains why fmtune turned a trial
// into FAIL (the key Optuna 2.x used for the same purpose).
const failReasonKey = "fail_reason"

func stateToDB(s goptuna.TrialState) (string, error) {
	switch s {
	case goptuna.TrialStateRunning:
		return stateRunning, nil
	case goptuna.TrialStateComplete:
		return stateComplete, nil
	case goptuna.TrialStatePruned:
		return statePruned, nil
	case goptuna.TrialStateFail:
		return stateFail, nil
	case goptuna.TrialStateWaiting:
		return stateWaiting, nil
	}
	return "", fmt.Errorf("unknown trial state %v", s)
}

func stateFromDB(s string) (goptuna.TrialState, error) {
	switch s {
	case stateRunning:
		return goptuna.TrialStateRunning, nil
	case stateComplete:
		return goptuna.TrialStateComplete, nil
	case statePruned:
		return goptuna.TrialStatePruned, nil
	case stateFail:
		return goptuna.TrialStateFail, nil
	case stateWaiting:
		return goptuna.TrialStateWaiting, nil
	}
	return 0, fmt.Errorf("unknown trial state %q in database", s)
}

func directionToDB(d goptuna.StudyDirection) (string, error) {
	switch d {
	case goptuna.StudyDirectionMinimize:
		return directionMinimize, nil
	case goptuna.StudyDirectionMaximize:
		return directionMaximize, nil
	}
	return "", fmt.Errorf("unknown study direction %q (want %q or %q)",
		d, goptuna.StudyDirectionMinimize, goptuna.StudyDirectionMaximize)
}

// directionFromDB maps Optuna's StudyDirection; NOT_SET (never written by Optuna 3)
// becomes the empty direction.
func directionFromDB(d string) (goptuna.StudyDirection, error) {
	switch d {
	case directionMinimize:
		return goptuna.StudyDirectionMinimize, nil
	case directionMaximize:
		return goptuna.StudyDirectionMaximize, nil
	case directionNotSet:
		return "", nil
	}
	return "", fmt.Errorf("unknown study direction %q in database", d)
}

// valueToDB is Optuna's TrialValueModel.value_to_stored_repr. NaN has no stored form
// in trial_values; callers never pass it.
func valueToDB(v float64) (any, string) {
	switch {
	case math.IsInf(v, 1):
		return nil, valueInfPos
	case math.IsInf(v, -1):
		return nil, valueInfNeg
	}
	return v, valueFinite
}

// intermediateToDB is Optuna's intermediate_value_to_stored_repr.
func intermediateToDB(v float64) (any, string) {
	if math.IsNaN(v) {
		return nil, valueNaN
	}
	return valueToDB(v)
}

// floatFromDB is Optuna's stored_repr_to_value / stored_repr_to_intermediate_value.
func floatFromDB(v *float64, typ string) (float64, error) {
	switch typ {
	case valueInfPos:
		return math.Inf(1), nil
	case valueInfNeg:
		return math.Inf(-1), nil
	case valueNaN:
		return math.NaN(), nil
	case valueFinite:
		if v == nil {
			return 0, errors.New("FINITE value stored as NULL")
		}
		return *v, nil
	}
	return 0, fmt.Errorf("unknown value type %q in database", typ)
}

// Distributions. goptuna has six distribution types, Optuna 3 three; the mapping is
//
//	UniformDistribution{Low,High}          <-> FloatDistribution{low,high,step:null,log:false}
//	LogUniformDistribution{Low,High}       <-> FloatDistribution{low,high,step:null,log:true}
//	DiscreteUniformDistribution{Low,High,Q}<-> FloatDistribution{low,high,step:Q,log:false}
//	IntUniformDistribution{Low,High}       <-> IntDistribution{low,high,step:1,log:false}
//	StepIntUniformDistribution{Low,High,S} <-> IntDistribution{low,high,step:S,log:false} (S != 1)
//	CategoricalDistribution{Choices}       <-> CategoricalDistribution{choices}
//
// Reading is lossy where goptuna cannot express Optuna's distribution: an IntDistribution
// with log:true becomes IntUniformDistribution (or StepInt...), a StepIntUniformDistribution
// with Step 1 comes back as IntUniformDistribution, and categorical choices that are
// neither strings nor numbers come back as their JSON text ("null", "true").
//
// Numeric categorical choices (Optuna's CategoricalDistribution([0.001, 0.01]), and
// fmtune's lr and batch choices) are numchoice labels on goptuna's side: written as
// JSON numbers, read back as labels, and external parameter values are float64.

// distributionToJSON encodes a goptuna distribution in Optuna's distribution_json,
// byte for byte as Optuna's distribution_to_json writes it.
func distributionToJSON(dist any) (string, error) {
	var b strings.Builder
	switch d := dist.(type) {
	case goptuna.UniformDistribution:
		writeFloatDist(&b, "null", d.Low, d.High, false)
	case goptuna.LogUniformDistribution:
		writeFloatDist(&b, "null", d.Low, d.High, true)
	case goptuna.DiscreteUniformDistribution:
		writeFloatDist(&b, pyFloat(d.Q), d.Low, d.High, false)
	case goptuna.IntUniformDistribution:
		writeIntDist(&b, 1, d.Low, d.High)
	case goptuna.StepIntUniformDistribution:
		writeIntDist(&b, d.Step, d.Low, d.High)
	case goptuna.CategoricalDistribution:
		b.WriteString(`{"name": "CategoricalDistribution", "attributes": {"choices": [`)
		for i, c := range d.Choices {
			if i > 0 {
				b.WriteString(", ")
			}
			if text, ok := numchoice.Parse(c); ok {
				b.WriteString(text)
			} else {
				b.WriteString(pyJSONString(c))
			}
		}
		b.WriteString("]}}")
	default:
		return "", fmt.Errorf("distribution %T: %w", dist, goptuna.ErrUnknownDistribution)
	}
	return b.String(), nil
}

// externalValue is goptuna's external value of a parameter, with numeric
// categorical choices as float64 instead of their labels.
func externalValue(dist any, ir float64) (any, error) {
	xr, err := goptuna.ToExternalRepresentation(dist, ir)
	if err != nil {
		return nil, err
	}
	if label, ok := xr.(string); ok {
		if v, isNum := numchoice.Value(label); isNum {
			return v, nil
		}
	}
	return xr, nil
}

func writeFloatDist(b *strings.Builder, step string, low, high float64, log bool) {
	fmt.Fprintf(b, `{"name": "FloatDistribution", "attributes": {"step": %s, "low": %s, "high": %s, "log": %t}}`,
		step, pyFloat(low), pyFloat(high), log)
}

func writeIntDist(b *strings.Builder, step, low, high int) {
	fmt.Fprintf(b, `{"name": "IntDistribution", "attributes": {"log": false, "step": %d, "low": %d, "high": %d}}`,
		step, low, high)
}

// distCache memoises distributionFromJSON: a study has a handful of distinct
// distribution_json strings, and GetAllTrials (which goptuna's samplers and pruners call
// for every trial) would otherwise decode the same JSON thousands of times.
var distCache struct {
	sync.Map // string -> any
	n        atomic.Int64
}

const distCacheMax = 4096

// distributionFromJSON decodes Optuna's distribution_json (Optuna 3 names and the
// pre-3.0 names that Optuna still reads) into a goptuna distribution.
func distributionFromJSON(s string) (any, error) {
	if d, ok := distCache.Load(s); ok {
		if c, isCat := d.(goptuna.CategoricalDistribution); isCat {
			// Callers get their own slice.
			return goptuna.CategoricalDistribution{Choices: slices.Clone(c.Choices)}, nil
		}
		return d, nil
	}
	d, err := decodeDistribution(s)
	if err == nil && distCache.n.Load() < distCacheMax {
		if _, loaded := distCache.LoadOrStore(s, d); !loaded {
			distCache.n.Add(1)
		}
		if c, isCat := d.(goptuna.CategoricalDistribution); isCat {
			d = goptuna.CategoricalDistribution{Choices: slices.Clone(c.Choices)}
		}
	}
	return d, err
}

func decodeDistribution(s string) (any, error) {
	var raw struct {
		Name  string                     `json:"name"`
		Attrs map[string]json.RawMessage `json:"attributes"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("distribution_json %q: %w", s, err)
	}
	a := attrReader{attrs: raw.Attrs}
	var dist any
	switch raw.Name {
	case "FloatDistribution":
		low, high := a.float("low"), a.float("high")
		switch {
		case a.boolean("log"):
			dist = goptuna.LogUniformDistribution{Low: low, High: high}
		case !a.null("step"):
			dist = goptuna.DiscreteUniformDistribution{Low: low, High: high, Q: a.float("step")}
		default:
			dist = goptuna.UniformDistribution{Low: low, High: high}
		}
	case "IntDistribution", "IntUniformDistribution", "IntLogUniformDistribution":
		low, high := a.integer("low"), a.integer("high")
		step := 1
		if !a.null("step") {
			step = a.integer("step")
		}
		if step == 1 {
			dist = goptuna.IntUniformDistribution{Low: low, High: high}
		} else {
			dist = goptuna.StepIntUniformDistribution{Low: low, High: high, Step: step}
		}
	case "UniformDistribution":
		dist = goptuna.UniformDistribution{Low: a.float("low"), High: a.float("high")}
	case "LogUniformDistribution":
		dist = goptuna.LogUniformDistribution{Low: a.float("low"), High: a.float("high")}
	case "DiscreteUniformDistribution":
		dist = goptuna.DiscreteUniformDistribution{Low: a.float("low"), High: a.float("high"), Q: a.float("q")}
	case "CategoricalDistribution":
		var choices []json.RawMessage
		if err := json.Unmarshal(a.attrs["choices"], &choices); err != nil {
			return nil, fmt.Errorf("distribution_json %q: choices: %w", s, err)
		}
		d := goptuna.CategoricalDistribution{Choices: make([]string, len(choices))}
		for i, c := range choices {
			if label, ok := numchoice.Label(strings.TrimSpace(string(c))); ok {
				d.Choices[i] = label
			} else {
				d.Choices[i] = jsonToAttr(string(c))
			}
		}
		dist = d
	default:
		return nil, fmt.Errorf("distribution_json %q: %w", s, goptuna.ErrUnknownDistribution)
	}
	if a.err != nil {
		return nil, fmt.Errorf("distribution_json %q: %w", s, a.err)
	}
	return dist, nil
}

// attrReader reads typed attributes, remembering the first error.
type attrReader struct {
	attrs map[string]json.RawMessage
	err   error
}

func (a *attrReader) null(k string) bool {
	v, ok := a.attrs[k]
	return !ok || string(v) == "null"
}

func (a *attrReader) float(k string) float64 {
	var f float64
	if err := json.Unmarshal(a.attrs[k], &f); err != nil && a.err == nil {
		a.err = fmt.Errorf("attribute %q: %w", k, err)
	}
	return f
}

func (a *attrReader) integer(k string) int {
	f := a.float(k)
	if f != math.Trunc(f) && a.err == nil {
		a.err = fmt.Errorf("attribute %q: %v is not an integer", k, f)
	}
	return int(f)
}

func (a *attrReader) boolean(k string) bool {
	if a.null(k) {
		return false
	}
	var v bool
	if err := json.Unmarshal(a.attrs[k], &v); err != nil && a.err == nil {
		a.err = fmt.Errorf("attribute %q: %w", k, err)
	}
	return v
}

// compatible is Optuna's check_distribution_compatibility: the same Optuna class and,
// for categorical distributions, the same choices.
func compatible(a, b any) bool {
	ca, aCat := a.(goptuna.CategoricalDistribution)
	cb, bCat := b.(goptuna.CategoricalDistribution)
	if aCat || bCat {
		if !aCat || !bCat || len(ca.Choices) != len(cb.Choices) {
			return false
		}
		for i := range ca.Choices {
			if ca.Choices[i] != cb.Choices[i] {
				return false
			}
		}
		return true
	}
	return optunaKind(a) == optunaKind(b)
}

func optunaKind(d any) string {
	switch d.(type) {
	case goptuna.UniformDistribution, goptuna.LogUniformDistribution, goptuna.DiscreteUniformDistribution:
		return "FloatDistribution"
	case goptuna.IntUniformDistribution, goptuna.StepIntUniformDistribution:
		return "IntDistribution"
	}
	return fmt.Sprintf("%T", d)
}

// attrToJSON stores a goptuna attribute (always a string) the way Optuna stores a Python
// str attribute: json.dumps(value).
func attrToJSON(v string) string { return pyJSONString(v) }

// jsonToAttr reads value_json back: a JSON string gives the string itself, any other JSON
// value (written by Optuna: numbers, lists, dicts, ...) its JSON text unchanged.
func jsonToAttr(raw string) string {
	var s string
	if t := strings.TrimSpace(raw); strings.HasPrefix(t, `"`) && json.Unmarshal([]byte(t), &s) == nil {
		return s
	}
	return strings.TrimSpace(raw)
}

// pyJSONString encodes s as Python's json.dumps does with its defaults (ensure_ascii).
func pyJSONString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			fmt.Fprintf(&b, `\u%04x`, r)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// pyFloat formats f as Python's repr (and so json.dumps) does.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// Datetimes. Optuna writes datetime_start and datetime_complete as naive local wall-clock
// time (Python datetime.now()); SQLAlchemy's SQLite dialect stores them as text with six
// fractional digits. fmtune writes and reads them the same way.
const dbTimeLayout = "2006-01-02 15:04:05.000000"

// timeArg is the parameter for a DATETIME/TIMESTAMP column: NULL for the zero time.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.In(time.Local).Format(dbTimeLayout)
}

// dbTime scans a naive DATETIME/TIMESTAMP column as local wall-clock time, whether the
// driver returns it as time.Time (pgx; go-sqlite3 for declared DATETIME columns) or text.
type dbTime struct{ t time.Time }

var _ interface{ Scan(any) error } = (*dbTime)(nil)

func (d *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		d.t = time.Time{}
	case time.Time:
		if x.IsZero() {
			d.t = time.Time{}
			return nil
		}
		d.t = time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.Local)
	case string:
		return d.parse(x)
	case []byte:
		return d.parse(string(x))
	default:
		return fmt.Errorf("cannot scan %T into a datetime", v)
	}
	return nil
}

func (d *dbTime) parse(s string) error {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			d.t = t
			return nil
		}
	}
	return fmt.Errorf("cannot parse datetime %q", s)
}

// nullFloat scans a nullable float column.
type nullFloat struct{ p *float64 }

func (n *nullFloat) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		n.p = nil
		return nil
	case float64:
		n.p = &x
	case int64:
		f := float64(x)
		n.p = &f
	case []byte:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return err
		}
		n.p = &f
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return err
		}
		n.p = &f
	default:
		return fmt.Errorf("cannot scan %T into a float", v)
	}
	return nil
}
