package admin

import (
	"html/template"
	"math"
	"slices"
	"strconv"
	"time"
)

// Sparkline geometry, in SVG user units (CSS pixels at scale 1). Samples are
// sparkStep apart, so x is always an integer and the markup stays small.
const (
	sparkStep = 2
	sparkW    = sparkStep * (historyLen - 1)
	sparkH    = 28
)

// sparkline renders samples as an inline SVG: throughput as a filled area and
// active connections as a line, each scaled to its own maximum, right-aligned
// so the newest sample is always at the right edge. The title says the current
// and peak values. It is built from numbers only, so it is safe as HTML.
func sparkline(p *points, every time.Duration) template.HTML {
	buf := make([]byte, 0, 1536)
	buf = append(buf, `<svg class="spark" viewBox="0 0 118 28" width="118" height="28" role="img"><title>`...)
	buf = append(buf, sparkTitle(p, every)...)
	buf = append(buf, `</title>`...)
	n := len(p.active)
	if n == 0 {
		buf = append(buf, `<line class="spark-empty" x1="0" y1="27" x2="118" y2="27"/></svg>`...)
		return template.HTML(buf)
	}
	x := func(i int) int { return sparkW - (n-1-i)*sparkStep }
	rateMax := float64(slices.Max(p.rate))
	activeMax := float64(slices.Max(p.active))
	y := func(v float32, peak float64) float64 {
		if peak <= 0 {
			return sparkH - 1
		}
		return sparkH - 1 - float64(v)/peak*(sparkH-4)
	}
	if rateMax > 0 {
		buf = append(buf, `<path class="spark-rate" d="M`...)
		buf = appendPoint(buf, x(0), sparkH)
		for i, v := range p.rate {
			buf = append(buf, 'L')
			buf = appendPoint(buf, x(i), y(v, rateMax))
		}
		buf = append(buf, 'L')
		buf = appendPoint(buf, x(n-1), sparkH)
		buf = append(buf, `Z"/>`...)
	}
	buf = append(buf, `<polyline class="spark-active" points="`...)
	if n == 1 { // one sample: a short flat stroke so it shows
		buf = appendPoint(buf, x(0)-sparkStep, y(p.active[0], activeMax))
		buf = append(buf, ' ')
	}
	for i, v := range p.active {
		if i > 0 {
			buf = append(buf, ' ')
		}
		buf = appendPoint(buf, x(i), y(v, activeMax))
	}
	buf = append(buf, `"/></svg>`...)
	return template.HTML(buf)
}

// appendPoint writes "x,y" with y to a tenth of a unit, and no ".0".
func appendPoint(buf []byte, x int, y float64) []byte {
	buf = strconv.AppendInt(buf, int64(x), 10)
	buf = append(buf, ',')
	tenths := int64(math.Round(y * 10))
	buf = strconv.AppendInt(buf, tenths/10, 10)
	if d := tenths % 10; d != 0 {
		buf = append(buf, '.', byte('0'+d))
	}
	return buf
}

// sparkTitle describes the series in words, for the tooltip and screen readers.
func sparkTitle(p *points, every time.Duration) string {
	n := len(p.active)
	if n == 0 {
		return "no samples yet"
	}
	span := humanDuration(time.Duration(n-1) * every)
	if n == 1 {
		span = "first sample"
	}
	return "active " + strconv.FormatFloat(float64(p.active[n-1]), 'f', 0, 64) +
		" (peak " + strconv.FormatFloat(float64(slices.Max(p.active)), 'f', 0, 64) + "), " +
		humanBytes(int64(p.rate[n-1])) + "/s (peak " + humanBytes(int64(slices.Max(p.rate))) + "/s) over " + span
}
