// Package numchoice carries a numeric categorical choice through goptuna,
// whose categorical choices are strings. search labels a number with Float
// or Int; storage writes such a label into Optuna's distribution_json as a
// JSON number and reads JSON numbers back as labels, so Optuna sees
// lr = 0.01 and batch = 128, not "0.01" and "128". A choice without the label
// is a plain string, as older fmtune studies stored lr and batch.
package numchoice

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// prefix marks a label. It starts with NUL so that no choice a person
// writes can be taken for a number by mistake.
const prefix = "\x00num:"

// Float labels a float choice. Its text is Python's repr of the float
// (0.001, 1.0, 1e-05), so Optuna reads a float, never an int.
func Float(v float64) string { return prefix + pyFloat(v) }

// Int labels an integer choice (Optuna reads an int).
func Int(v int) string { return prefix + strconv.Itoa(v) }

// Label labels the text of a JSON number as stored (read back from
// distribution_json). It returns "", false when text is not a JSON number.
func Label(text string) (string, bool) {
	if !IsNumber(text) {
		return "", false
	}
	return prefix + text, true
}

// Parse returns the JSON number text of a label; ok is false for a plain
// string choice.
func Parse(label string) (text string, ok bool) {
	text, ok = strings.CutPrefix(label, prefix)
	if !ok || !IsNumber(text) {
		return "", false
	}
	return text, true
}

// Value is the number a label stands for; ok is false for a plain string.
func Value(label string) (float64, bool) {
	text, ok := Parse(label)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(text, 64)
	return v, err == nil
}

// IsNumber reports whether text is one JSON number and nothing else.
func IsNumber(text string) bool {
	if text == "" || !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal([]byte(text), &n) == nil
}

// pyFloat formats a finite f as Python's repr does.
func pyFloat(f float64) string {
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
