package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxWeight is the largest operator weight, as in the configuration.
const MaxWeight = 256

// Operator is the value of an operator key: what the operator wants for one
// backend on every instance. A missing key is the zero Operator: not
// draining, the file's weight.
type Operator struct {
	Drain  bool      `json:"drain"`
	Weight *int      `json:"weight"` // nil = the file's weight
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Same reports whether o and p ask for the same thing (who and when aside).
func (o Operator) Same(p Operator) bool {
	if o.Drain != p.Drain || (o.Weight == nil) != (p.Weight == nil) {
		return false
	}
	return o.Weight == nil || *o.Weight == *p.Weight
}

// operatorJSON has pointers so a missing "drain" can be told from false.
type operatorJSON struct {
	Drain  *bool           `json:"drain"`
	Weight json.RawMessage `json:"weight"`
	By     *string         `json:"by"`
	At     *string         `json:"at"`
}

// ParseOperator reads an operator value strictly: a JSON object with a
// boolean "drain", a "weight" that is null, absent or an integer 0..256, and
// optional strings "by" and "at" (RFC 3339). Anything else is an error that
// says what is wrong, and the value must not be applied.
func ParseOperator(data []byte) (Operator, error) {
	var raw operatorJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Operator{}, fmt.Errorf("not a JSON object of the operator shape: %w", err)
	}
	if dec.More() {
		return Operator{}, errors.New("trailing data after the JSON object")
	}
	var op Operator
	if raw.Drain == nil {
		return Operator{}, errors.New(`"drain" (true or false) is missing`)
	}
	op.Drain = *raw.Drain
	if len(raw.Weight) > 0 && string(raw.Weight) != "null" {
		var w int
		if err := json.Unmarshal(raw.Weight, &w); err != nil {
			return Operator{}, fmt.Errorf(`"weight" must be null or an integer 0..%d, got %s`, MaxWeight, raw.Weight)
		}
		if w < 0 || w > MaxWeight {
			return Operator{}, fmt.Errorf(`"weight" %d outside 0..%d`, w, MaxWeight)
		}
		op.Weight = &w
	}
	if raw.By != nil {
		op.By = *raw.By
	}
	if raw.At != nil && *raw.At != "" {
		t, err := time.Parse(time.RFC3339Nano, *raw.At)
		if err != nil {
			return Operator{}, fmt.Errorf(`"at" must be an RFC 3339 time: %w`, err)
		}
		op.At = t
	}
	return op, nil
}

// encode is the value written to etcd.
func (o Operator) encode() string {
	v := struct {
		Drain  bool   `json:"drain"`
		Weight *int   `json:"weight"`
		By     string `json:"by"`
		At     string `json:"at"`
	}{o.Drain, o.Weight, o.By, o.At.UTC().Format(time.RFC3339Nano)}
	b, _ := json.Marshal(v) // cannot fail: plain types
	return string(b)
}
