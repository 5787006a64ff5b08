package study

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes a spec or plan file into v, refusing unknown keys.
// Its errors speak of the file's keys (`line 3: unknown key "epoch" (valid:
// ...)`), not of Go types. An empty file leaves v as it was and returns
// io.EOF.
func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(v)
	var te *yaml.TypeError
	if err == nil || errors.Is(err, io.EOF) || !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		msgs[i] = unknownKey.ReplaceAllStringFunc(e, func(m string) string {
			sub := unknownKey.FindStringSubmatch(m)
			t, ok := fileTypes[sub[2]]
			if !ok {
				return m
			}
			return fmt.Sprintf("unknown key %q (valid: %s)", sub[1], strings.Join(yamlKeys(t), ", "))
		})
	}
	return errors.New(strings.Join(msgs, "; "))
}

// unknownKey matches yaml.v3's message for a key that no field takes.
var unknownKey = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// fileTypes are the types of spec and plan files, by the name yaml.v3 gives.
var fileTypes = map[string]reflect.Type{}

func init() {
	for _, v := range []any{File{}, SpecKeys{}, Plan{}, PlanStep{}, ManualStep{}, TuneStep{}, BestOfStep{}} {
		t := reflect.TypeOf(v)
		fileTypes[t.String()] = t
	}
}

// yamlKeys lists the keys a struct type takes in YAML, inline fields' too.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			keys = append(keys, yamlKeys(f.Type)...)
		case name != "" && name != "-":
			keys = append(keys, name)
		}
	}
	return keys
}
