package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Weight bounds, as SPEC §2 and §4 give them.
const (
	minWeight = 0
	maxWeight = 256
)

// decodeWeight reads the body of PUT .../weight strictly: exactly one JSON
// object {"weight": N} with N an integer in 0..256, no other field, nothing
// after it. Each problem gets a 400 that names it; a body over the cap, 413.
func decodeWeight(body io.Reader) (int, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req struct {
		Weight json.RawMessage `json:"weight"`
	}
	if err := dec.Decode(&req); err != nil {
		return 0, weightBodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if tooLarge(err) {
			return 0, err
		}
		return 0, httpError(http.StatusBadRequest, `trailing data after the JSON object: want exactly {"weight": N}`)
	}
	if req.Weight == nil {
		return 0, httpError(http.StatusBadRequest, `missing "weight": want {"weight": N} with N in %d..%d`, minWeight, maxWeight)
	}
	return parseWeight(string(bytes.TrimSpace(req.Weight)))
}

// parseWeight accepts a decimal integer in range and nothing else (no 1.0, no
// 1e2, no "3", no null), for the JSON body and the dashboard's form alike.
func parseWeight(s string) (int, error) {
	w, err := strconv.Atoi(s)
	if err != nil {
		return 0, httpError(http.StatusBadRequest, "weight must be an integer in %d..%d, got %s", minWeight, maxWeight, quoteShort(s))
	}
	if w < minWeight || w > maxWeight {
		return 0, httpError(http.StatusBadRequest, "weight %d out of range %d..%d", w, minWeight, maxWeight)
	}
	return w, nil
}

func weightBodyError(err error) error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case tooLarge(err):
		return err
	case errors.Is(err, io.EOF):
		return httpError(http.StatusBadRequest, `empty body: want {"weight": N}`)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return httpError(http.StatusBadRequest, "malformed JSON: body ends too early")
	case errors.As(err, &syntaxErr):
		return httpError(http.StatusBadRequest, "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.As(err, &typeErr):
		return httpError(http.StatusBadRequest, `body must be a JSON object {"weight": N}, got a JSON %s`, typeErr.Value)
	}
	// DisallowUnknownFields reports `json: unknown field "x"` without a type.
	return httpError(http.StatusBadRequest, "bad weight body: %v", err)
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return fmt.Sprintf("%q", s)
}
