package report

import (
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/balancel4/balance-l4/bench/internal/peer"
	"github.com/balancel4/balance-l4/bench/internal/suite"
)

// ChartFile is where -out puts the chart by default, relative to the Markdown
// file's directory (the repository root for BENCHMARKS.md).
const ChartFile = "bench/chart.svg"

// The chart's geometry, in SVG user units (pixels): two columns of panels, one
// panel per figure, one line per peer in every panel.
const (
	chartColumns = 2
	chartMargin  = 10.0
	panelWidth   = 465.0
	panelTop     = 42.0 // title and subtitle above the first bar
	lineHeight   = 16.0
	barHeight    = 11.0
	panelBottom  = 18.0 // room for the "1.0" under the reference line
	nameWidth    = 100.0
	barWidth     = 240.0
	headerHeight = 62.0
	// chartMaxRatio caps a panel's scale; a bar beyond it is drawn to the edge
	// and marked off scale, its label still giving the ratio.
	chartMaxRatio = 3.0
	chartMinScale = 1.5 // so the reference line never sits at a panel's edge
)

// peerColour gives every peer one colour in every panel; direct is grey: it is
// the limit, not a contender.
var peerColour = map[string]string{
	peer.Direct:      "#9e9e9e",
	peer.BalanceL4:   "#1f77b4",
	peer.BalanceL4B:  "#17becf",
	peer.HAProxy1:    "#ff9f80",
	peer.HAProxy2:    "#d62728",
	peer.Nginx:       "#2ca02c",
	peer.GoProxy:     "#9467bd",
	peer.GoEventLoop: "#8c564b",
}

const otherColour = "#7f7f7f"

// labelHalo keeps a bar's label readable where the reference line crosses it.
const labelHalo = `stroke="#fafafa" stroke-width="3" paint-order="stroke"`

// chartLine is one peer in one panel.
type chartLine struct {
	name   string
	ratio  float64 // value / reference; valid when note == ""
	value  string  // the median as the table shows it
	note   string  // why there is no bar: absent, failed, no proxy, –
	best   bool
	direct bool
}

// chartPanel is one figure.
type chartPanel struct {
	title    string
	subtitle string
	scale    float64 // ratio at the right end of the bar area
	lines    []chartLine
}

// Chart draws the medians as one SVG of small multiples: a panel per figure
// (every row of the table but the counts), in the table's order, and in each a
// horizontal bar per peer, in the report's peer order, of its median divided
// by HAProxy 2 threads' — or, where that has no value, by the best proxy's —
// with a dashed reference line at 1.0. Each panel says whether less or more is
// better; the best proxy (Best) is starred and bold. The output depends only
// on the report (coordinates to 0.1, ratios to 0.01), so a rerun on the same
// numbers writes the same bytes.
func (r Report) Chart() []byte {
	var panels []chartPanel
	var peers []*suite.PeerResult
	if r.Suite != nil {
		peers = r.Suite.Peers
		for _, row := range r.Suite.Rows {
			if row.Kind != suite.Count {
				panels = append(panels, newPanel(row, peers))
			}
		}
	}
	rows := (len(panels) + chartColumns - 1) / chartColumns
	ph := panelHeight(len(peers))
	width := chartMargin + chartColumns*(panelWidth+chartMargin)
	height := headerHeight + float64(rows)*(ph+chartMargin) + chartMargin

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="sans-serif" font-size="11">`+"\n",
		f1(width), f1(height), f1(width), f1(height))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>`+"\n", f1(width), f1(height))
	title := "balance-l4 benchmark: every figure per peer"
	if !r.Machine.Date.IsZero() {
		title += ", " + r.Machine.Date.Format("2006-01-02 15:04 UTC")
	}
	text(&b, chartMargin, 22, `font-size="16" font-weight="bold"`, title)
	text(&b, chartMargin, 40, `fill="#444444"`,
		fmt.Sprintf("Bars: each peer's median divided by %s's (dashed line = 1.0; a panel says when another peer is 1.0).", refHAProxy))
	text(&b, chartMargin, 55, `fill="#444444"`,
		"★ bold: the best proxy of the panel. Grey: direct, no proxy, the limit. » : off the scale, the label gives the ratio.")
	for i, p := range panels {
		x := chartMargin + float64(i%chartColumns)*(panelWidth+chartMargin)
		y := headerHeight + float64(i/chartColumns)*(ph+chartMargin)
		p.draw(&b, x, y, ph)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func panelHeight(peers int) float64 {
	return panelTop + float64(peers)*lineHeight + panelBottom
}

func newPanel(row suite.Row, peers []*suite.PeerResult) chartPanel {
	p := chartPanel{title: row.Label}
	best := Best(row, peers)
	refName, refValue, ok := chartReference(row, peers, best)
	better := "more is better"
	if row.Kind != suite.Rate {
		better = "less is better"
	}
	p.subtitle = better
	if ok {
		p.subtitle += fmt.Sprintf(" · 1.0 = %s (%s)", refName, Number(refValue, row.Digits))
	}
	maxRatio := 0.0
	for _, pr := range peers {
		l := chartLine{name: pr.Name, best: slices.Contains(best, pr.Name), direct: pr.Name == refDirect}
		v, has := pr.Median(row.Key)
		switch {
		case pr.Absent != "":
			l.note = "absent"
		case !has && pr.Failed(row.Figure()):
			l.note = "failed"
		case !has && l.direct:
			l.note = "– (no proxy)"
		case !has || !ok:
			l.note = "–"
		default:
			l.value = Number(v, row.Digits)
			l.ratio = v / refValue
			maxRatio = max(maxRatio, l.ratio)
		}
		p.lines = append(p.lines, l)
	}
	p.scale = min(chartMaxRatio, max(chartMinScale, math.Ceil(maxRatio*2)/2))
	return p
}

// chartReference is the peer a panel's bars are divided by: HAProxy 2 threads
// when it has a value, else the first best proxy, else the first proxy with a
// value, else direct; ok is false when no peer has a (non-zero) value.
func chartReference(row suite.Row, peers []*suite.PeerResult, best []string) (name string, value float64, ok bool) {
	var candidates []string
	candidates = append(candidates, refHAProxy)
	candidates = append(candidates, best...)
	for _, p := range contenders(row, peers) {
		candidates = append(candidates, p.Name)
	}
	candidates = append(candidates, refDirect)
	for _, n := range candidates {
		for _, p := range peers {
			if p.Name != n || p.Absent != "" {
				continue
			}
			if v, has := p.Median(row.Key); has && v > 0 {
				return n, v, true
			}
		}
	}
	return "", 0, false
}

func (p chartPanel) draw(b *strings.Builder, x, y, h float64) {
	fmt.Fprintf(b, `<g><rect x="%s" y="%s" width="%s" height="%s" fill="#fafafa" stroke="#dddddd"/>`+"\n",
		f1(x), f1(y), f1(panelWidth), f1(h))
	text(b, x+8, y+16, `font-size="12" font-weight="bold"`, p.title)
	text(b, x+8, y+31, `fill="#555555"`, p.subtitle)
	x0 := x + nameWidth
	perRatio := barWidth / p.scale
	// The axis at 0, the reference line at 1.0 (under the bars and their
	// labels), and the scale's ends below them.
	rx := x0 + perRatio
	top, bottom := y+panelTop-3, y+panelTop+float64(len(p.lines))*lineHeight
	fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#bbbbbb"/>`+"\n", f1(x0), f1(top), f1(x0), f1(bottom))
	fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333" stroke-dasharray="3,2"/>`+"\n", f1(rx), f1(top), f1(rx), f1(bottom))
	text(b, x0, bottom+11, `text-anchor="middle" fill="#777777" font-size="9"`, "0")
	text(b, rx, bottom+11, `text-anchor="middle" fill="#333333" font-size="9"`, "1.0")
	text(b, x0+barWidth, bottom+11, `text-anchor="middle" fill="#777777" font-size="9"`, fmt.Sprintf("%.1f", p.scale))
	for i, l := range p.lines {
		top := y + panelTop + float64(i)*lineHeight
		base := top + barHeight - 1.5 // text baseline, level with the bar
		name, weight := l.name, ""
		if l.best {
			name, weight = "★ "+name, ` font-weight="bold"`
		}
		text(b, x0-6, base, `text-anchor="end"`+weight, name)
		if l.note != "" {
			text(b, x0+4, base, `fill="#777777"`, l.note)
			continue
		}
		colour, ok := peerColour[l.name]
		if !ok {
			colour = otherColour
		}
		w := max(0, l.ratio*perRatio) // a negative growth of RSS draws no bar
		label := fmt.Sprintf("%.2f · %s", l.ratio, l.value)
		if l.ratio > p.scale {
			w = barWidth
			label = "» " + label
		}
		fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`+"\n", f1(x0), f1(top), f1(w), f1(barHeight), colour)
		text(b, x0+w+4, base, labelHalo+weight, label)
	}
	b.WriteString("</g>\n")
}

// text writes one <text> element; attrs are extra attributes, s is escaped.
func text(b *strings.Builder, x, y float64, attrs, s string) {
	if attrs != "" {
		attrs = " " + attrs
	}
	fmt.Fprintf(b, `<text x="%s" y="%s"%s>`, f1(x), f1(y), attrs)
	_ = xml.EscapeText(b, []byte(s)) // a strings.Builder does not fail
	b.WriteString("</text>\n")
}

// f1 formats a coordinate to one decimal, the chart's fixed precision.
func f1(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	if s == "-0.0" {
		s = "0.0"
	}
	return s
}
