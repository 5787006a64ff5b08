package numchoice

import "testing"

func TestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		label string
		text  string
		value float64
	}{
		{Float(0.001), "0.001", 0.001},
		{Float(1), "1.0", 1},
		{Float(1e-5), "1e-05", 1e-5},
		{Int(128), "128", 128},
	} {
		text, ok := Parse(c.label)
		if !ok || text != c.text {
			t.Errorf("Parse(%q) = %q, %v; want %q", c.label, text, ok, c.text)
		}
		if v, ok := Value(c.label); !ok || v != c.value {
			t.Errorf("Value(%q) = %v, %v; want %v", c.label, v, ok, c.value)
		}
		if l, ok := Label(c.text); !ok || l != c.label {
			t.Errorf("Label(%q) = %q, %v; want %q", c.text, l, ok, c.label)
		}
	}
}

func TestPlainStringsAreNotNumbers(t *testing.T) {
	for _, s := range []string{"0.01", "128", "sgd", "", prefix + "abc", prefix + "1 2", prefix + "NaN"} {
		if _, ok := Parse(s); ok {
			t.Errorf("Parse(%q) took a plain string for a number", s)
		}
	}
	for _, s := range []string{"null", "true", `"1"`, "1e", "NaN", "[1]"} {
		if _, ok := Label(s); ok {
			t.Errorf("Label(%q) took %s for a JSON number", s, s)
		}
	}
}
