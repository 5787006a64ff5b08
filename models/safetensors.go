package models

// Model files in the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian tensors. fmtune writes F32
// tensors in PyTorch's layout (see Tensors) and the architecture in the
// header's __metadata__ under MetaArch.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MetaArch is the metadata key of the architecture name.
const MetaArch = "arch"

// ErrModelFile is wrapped by the errors of ReadModelFile and DecodeSafetensors
// for a file that is not an fmtune model: corrupt, truncated, foreign, or of
// another architecture.
var ErrModelFile = errors.New("not a usable fmtune model file")

// maxHeader bounds the JSON header (fmtune's are under 2 KB).
const maxHeader = 1 << 20

// EncodeSafetensors returns m's weights with metadata (string values; MetaArch is
// set to m's architecture) in the safetensors format.
func EncodeSafetensors(m *Model, meta map[string]string) []byte {
	md := map[string]string{}
	for k, v := range meta {
		md[k] = v
	}
	md[MetaArch] = m.Arch()
	md["format"] = "pt" // what safetensors' PyTorch loader expects
	tensors := m.Tensors()
	header := map[string]any{"__metadata__": md}
	var off int64
	for _, t := range tensors {
		n := int64(4 * len(t.Data))
		header[t.Name] = map[string]any{"dtype": "F32", "shape": t.Shape, "data_offsets": [2]int64{off, off + n}}
		off += n
	}
	h, _ := json.Marshal(header) // maps of strings and numbers always marshal
	// Pad the header with spaces so that the data starts 8-byte aligned.
	for (8+len(h))%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+int64(len(h))+off)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, t := range tensors {
		for _, v := range t.Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out
}

// tensorEntry is one tensor of a safetensors header.
type tensorEntry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// DecodeSafetensors reads a model and its metadata from the bytes of a
// safetensors file written by EncodeSafetensors (or by anything that writes
// the same F32 tensors and arch metadata). Every problem is an error wrapping
// ErrModelFile that says what is wrong.
func DecodeSafetensors(b []byte) (*Model, map[string]string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrModelFile, fmt.Sprintf(format, args...))
	}
	if len(b) < 8 {
		return nil, nil, bad("%d bytes, too short for the 8-byte header length of a safetensors file", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, nil, bad("the header length %d does not fit in the %d-byte file (not a safetensors file, or truncated)", n, len(b))
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b[8 : 8+n]))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, bad("the header is not a JSON object (not a safetensors file?): %v", err)
	}
	body := b[8+n:]
	meta := map[string]string{}
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, nil, bad("__metadata__ is not an object of strings: %v", err)
		}
		delete(raw, "__metadata__")
	}
	archName := meta[MetaArch]
	if archName == "" {
		return nil, nil, bad("the metadata names no architecture (%q): the file was not written by fmtune", MetaArch)
	}
	if lookupArch(archName) == nil {
		return nil, nil, bad("unknown architecture %q (fmtune has %s)", archName, strings.Join(ArchNames(), ", "))
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	var tensors []Tensor
	var ranges [][2]int64
	for _, name := range names {
		var e tensorEntry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, nil, bad("tensor %s: %v", name, err)
		}
		if e.Dtype != "F32" {
			return nil, nil, bad("tensor %s has dtype %s; fmtune models are F32", name, e.Dtype)
		}
		size := int64(1)
		for _, d := range e.Shape {
			if d < 0 || d > 1<<30 {
				return nil, nil, bad("tensor %s has shape %v", name, e.Shape)
			}
			size *= int64(d)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		switch {
		case begin < 0 || end < begin || end > int64(len(body)):
			return nil, nil, bad("tensor %s: bytes %d..%d are outside the %d data bytes (truncated file?)", name, begin, end, len(body))
		case end-begin != 4*size:
			return nil, nil, bad("tensor %s: %d bytes for shape %v, want %d", name, end-begin, e.Shape, 4*size)
		}
		ranges = append(ranges, e.DataOffsets)
		d := make([]float32, size)
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[begin+4*int64(i):]))
		}
		tensors = append(tensors, Tensor{Name: name, Shape: e.Shape, Data: d})
	}
	// The tensors tile the data bytes, without gap or overlap.
	sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
	var at int64
	for _, r := range ranges {
		if r[0] != at {
			return nil, nil, bad("the tensors' byte ranges overlap or leave a gap at byte %d", at)
		}
		at = r[1]
	}
	if at != int64(len(body)) {
		return nil, nil, bad("the tensors cover %d of the %d data bytes", at, len(body))
	}
	m, err := FromTensors(archName, tensors)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrModelFile, err)
	}
	return m, meta, nil
}

// WriteModelFile writes m with meta to path in the safetensors format,
// atomically: a temporary file in the same directory, synced, then renamed,
// so path is either the old file or the whole new one.
func WriteModelFile(path string, m *Model, meta map[string]string) error {
	return writeAtomic(path, EncodeSafetensors(m, meta))
}

// ReadModelFile reads a model file written by WriteModelFile.
func ReadModelFile(path string) (*Model, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read model: %w", err)
	}
	m, meta, err := DecodeSafetensors(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, meta, nil
}

func writeAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".fmtune-model-*.tmp")
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write model %s: the directory %s does not exist", path, dir)
	}
	if err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	return nil
}
