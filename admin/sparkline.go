package admin

import (
	"html/template"
	"math"
	"slices"
	"strconv"
	"time"
)

// Sparkline geometry, in SVG user units (CSS pixels at scale 1). A full
// history has its samples sparkStep apart.
const (
	sparkStep = 2
	sparkW    = sparkStep * (historyLen - 1)
	sparkH    = 28
)

// sparkline renders samples as an inline SVG: throughput as a filled area and
// active connections as a line, each scaled to its own maximum, with the
// newest sample at the right edge. The x axis spans slots samples (at least
// those in p): the service's sample count, so every chart of a service shares
// one axis, which stretches over the data present until the history is full
// (sparkSpan labels it), and a chart reads as one from the first minute. The
// title says the current and peak values. It is built from numbers only, so
// it is safe as HTML.
func sparkline(p *points, every time.Duration, slots int) template.HTML {
	buf := make([]byte, 0, 1536)
	buf = append(buf, `<svg class="spark" viewBox="0 0 118 28" width="118" height="28" role="img"><title>`...)
	buf = append(buf, sparkTitle(p, every)...)
	buf = append(buf, `</title>`...)
	n := len(p.active)
	if n == 0 {
		buf = append(buf, `<line class="spark-empty" x1="0" y1="27" x2="118" y2="27"/></svg>`...)
		return template.HTML(buf)
	}
	slots = min(max(slots, n, 2), historyLen)
	step := float64(sparkW) / float64(slots-1)
	x := func(i int) float64 { return sparkW - float64(n-1-i)*step }
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
	if n == 1 { // one sample: a flat stroke one step long so it shows
		buf = appendPoint(buf, x(0)-step, y(p.active[0], activeMax))
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

// sparkSpan labels the x axis of a service's charts, which hold n samples
// taken every every: "last 5m" once the history is full, "last 40s" before.
func sparkSpan(n int, every time.Duration) string {
	return "last " + humanDuration(time.Duration(min(max(n, 1), historyLen))*every)
}

// appendPoint writes "x,y", each to a tenth of a unit, without ".0".
func appendPoint(buf []byte, x, y float64) []byte {
	buf = appendTenths(buf, x)
	buf = append(buf, ',')
	return appendTenths(buf, y)
}

func appendTenths(buf []byte, v float64) []byte {
	tenths := int64(math.Round(v * 10))
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
