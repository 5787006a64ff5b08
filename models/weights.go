package models

// Weight export and import: the flat buffer as bytes (what the storage
// keeps), and the weights as named tensors in PyTorch's layout (what a
// model file holds).

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Weights returns the weights as little-endian float32s, in the order and
// layout of the flat buffer: the compact form the storage keeps.
func (m *Model) Weights() []byte {
	out := make([]byte, 4*len(m.flat))
	for i, v := range m.flat {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

// LoadWeights returns a model of arch with the weights b (as Weights
// returns them).
func LoadWeights(archName string, b []byte) (*Model, error) {
	m, err := NewModel(archName, 0)
	if err != nil {
		return nil, err
	}
	if len(b) != 4*len(m.flat) {
		return nil, fmt.Errorf("models: weights of %s: %d bytes, want %d (%d float32 parameters)",
			archName, len(b), 4*len(m.flat), len(m.flat))
	}
	for i := range m.flat {
		m.flat[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return m, nil
}

// Tensor is one weight tensor in PyTorch's layout (row-major, float32).
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// layout says how a parameter's tensor differs from fmtune's storage of it.
type layout struct {
	name  string // PyTorch-style name: conv1.weight, dense1.bias, ...
	shape []int  // its shape in PyTorch's layout
	// fromFlat[j] is the index in the parameter's slice of the flat buffer
	// of element j of the tensor (nil: the same order).
	fromFlat []int
}

// layouts gives, for each parameter of a, its tensor in PyTorch's layout:
//
//   - a dense kernel is stored (in, out) and exported (out, in) like
//     torch.nn.Linear.weight; after convolutions, fmtune flattens (h, w, c)
//     and PyTorch (c, h, w), so the input index is permuted too;
//   - a convolution kernel is stored as the (k*k*in, out) im2col matrix and
//     exported (out, in, k, k) like torch.nn.Conv2d.weight;
//   - biases are the same.
func (a *arch) layouts() []layout {
	out := make([]layout, len(a.params))
	side, channels := 28, 1 // the image feeding the next layer (image archs)
	flattened := !a.image
	for i, p := range a.params {
		layer, kind, _ := strings.Cut(p.name, "/")
		if kind == "b" {
			out[i] = layout{name: layer + ".bias", shape: []int{p.shape[0]}}
			continue
		}
		rows, cols := p.shape[0], p.shape[1]
		idx := make([]int, rows*cols)
		if strings.HasPrefix(layer, "conv") {
			k := int(math.Round(math.Sqrt(float64(rows / channels))))
			// tensor (o, ch, ky, kx) <- flat row (ky*k+kx)*in+ch, column o
			j := 0
			for o := range cols {
				for ch := range channels {
					for ky := range k {
						for kx := range k {
							idx[j] = ((ky*k+kx)*channels+ch)*cols + o
							j++
						}
					}
				}
			}
			out[i] = layout{name: layer + ".weight", shape: []int{cols, channels, k, k}, fromFlat: idx}
			side, channels = (side-k+1)/2, cols // valid convolution, then 2x2 max-pool
			continue
		}
		// dense: tensor (o, in) <- flat row in, column o
		for o := range cols {
			for in := range rows {
				r := in
				if !flattened { // PyTorch's input index c*side*side + y*side + x
					c, yx := in/(side*side), in%(side*side)
					r = yx*channels + c
				}
				idx[o*rows+in] = r*cols + o
			}
		}
		flattened = true
		out[i] = layout{name: layer + ".weight", shape: []int{cols, rows}, fromFlat: idx}
	}
	return out
}

// Tensors returns copies of the model's weights as named tensors in
// PyTorch's layout, in the architecture's order.
func (m *Model) Tensors() []Tensor {
	var out []Tensor
	off := 0
	for i, l := range m.arch.layouts() {
		size := m.arch.params[i].shape.TotalSize()
		src := m.flat[off : off+size]
		off += size
		d := make([]float32, size)
		if l.fromFlat == nil {
			copy(d, src)
		} else {
			for j, k := range l.fromFlat {
				d[j] = src[k]
			}
		}
		out = append(out, Tensor{Name: l.name, Shape: l.shape, Data: d})
	}
	return out
}

// TensorSpec is the name and shape of one tensor of an architecture.
type TensorSpec struct {
	Name  string
	Shape []int
}

// TensorSpecs lists the tensors Tensors returns for arch, or nil for an
// unknown architecture.
func TensorSpecs(archName string) []TensorSpec {
	a := lookupArch(archName)
	if a == nil {
		return nil
	}
	var out []TensorSpec
	for _, l := range a.layouts() {
		out = append(out, TensorSpec{Name: l.name, Shape: l.shape})
	}
	return out
}

// FromTensors returns a model of arch with the given weights, which must be
// exactly the tensors Tensors returns for arch (names and shapes, in any
// order).
func FromTensors(archName string, tensors []Tensor) (*Model, error) {
	m, err := NewModel(archName, 0)
	if err != nil {
		return nil, err
	}
	byName := map[string]Tensor{}
	for _, t := range tensors {
		byName[t.Name] = t
	}
	layouts := m.arch.layouts()
	var problems []string
	if len(byName) != len(layouts) {
		var want []string
		for _, l := range layouts {
			want = append(want, l.name)
		}
		problems = append(problems, fmt.Sprintf("%d tensors, the %s architecture has %d (%s)",
			len(byName), archName, len(layouts), strings.Join(want, ", ")))
	}
	off := 0
	for i, l := range layouts {
		size := m.arch.params[i].shape.TotalSize()
		dst := m.flat[off : off+size]
		off += size
		t, ok := byName[l.name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no tensor %s", l.name))
			continue
		case !slices.Equal(t.Shape, l.shape):
			problems = append(problems, fmt.Sprintf("tensor %s has shape %v, the %s architecture wants %v", l.name, t.Shape, archName, l.shape))
			continue
		case len(t.Data) != size:
			problems = append(problems, fmt.Sprintf("tensor %s has %d values, its shape %v wants %d", l.name, len(t.Data), l.shape, size))
			continue
		}
		if l.fromFlat == nil {
			copy(dst, t.Data)
		} else {
			for j, k := range l.fromFlat {
				dst[k] = t.Data[j]
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrWeightsMismatch, strings.Join(problems, "; "))
	}
	return m, nil
}

// ErrWeightsMismatch is wrapped by FromTensors' errors: the tensors are not
// those of the architecture.
var ErrWeightsMismatch = fmt.Errorf("the weights do not fit the architecture")
