package models

import (
	"context"
	"fmt"

	"github.com/fmtune/fmtune/data"
)

// Confusion is a confusion matrix: Confusion[true][predicted] counts the
// examples of class true that the model put in class predicted.
type Confusion [data.Classes][data.Classes]int

// ConfusionOf counts predictions against labels (of equal length).
func ConfusionOf(labels, predicted []uint8) Confusion {
	var c Confusion
	for i, l := range labels {
		c[l][predicted[i]]++
	}
	return c
}

// Confusion predicts every example of set and returns the confusion matrix.
func (m *Model) Confusion(set *data.Set) (Confusion, error) {
	pred, err := m.Predict(set)
	if err != nil {
		return Confusion{}, fmt.Errorf("models: confusion matrix: %w", err)
	}
	return ConfusionOf(set.Labels, pred), nil
}

// Total is the number of examples counted.
func (c *Confusion) Total() int {
	n := 0
	for _, row := range c {
		for _, v := range row {
			n += v
		}
	}
	return n
}

// Accuracy is the share of examples on the diagonal (0 for none).
func (c *Confusion) Accuracy() float64 {
	right := 0
	for i := range c {
		right += c[i][i]
	}
	if n := c.Total(); n > 0 {
		return float64(right) / float64(n)
	}
	return 0
}

// ClassAccuracy is, per true class, the share predicted right (recall); 0
// for a class without examples.
func (c *Confusion) ClassAccuracy() [data.Classes]float64 {
	var out [data.Classes]float64
	for i, row := range c {
		n := 0
		for _, v := range row {
			n += v
		}
		if n > 0 {
			out[i] = float64(c[i][i]) / float64(n)
		}
	}
	return out
}

// EvaluateConfusion is Evaluate and Confusion in one pass over set: the
// mean cross-entropy loss and the confusion matrix (whose Accuracy is
// Evaluate's accuracy).
func (m *Model) EvaluateConfusion(set *data.Set) (loss float64, c Confusion, err error) {
	if set.Len() == 0 {
		return 0, c, fmt.Errorf("models: evaluate: empty set")
	}
	var sum float64
	err = m.forward(context.Background(), set, func(i int, logits []float32) {
		l := int(set.Labels[i])
		sum += logSumExp(logits) - float64(logits[l])
		c[l][argmax(logits)]++
	})
	if err != nil {
		return 0, Confusion{}, err
	}
	return sum / float64(set.Len()), c, nil
}
