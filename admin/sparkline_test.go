package admin

import (
	"strings"
	"testing"
	"time"
)

func TestSparkline(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    points
		want []string
		not  []string
	}{
		{"empty", points{}, []string{`<title>no samples yet</title>`, `class="spark-empty"`}, []string{"polyline"}},
		{"one sample", points{active: []float32{4}, rate: []float32{0}},
			[]string{`points="116,3 118,3"`, "first sample"}, []string{"spark-rate"}},
		{"right-aligned and scaled", points{active: []float32{0, 5, 10}, rate: []float32{0, 1024, 2048}},
			// newest at x=118; y from 27 (0) to 3 (peak), rate area closed at the bottom
			[]string{`points="114,27 116,15 118,3"`, `d="M114,28L114,27L116,15L118,3L118,28Z"`,
				"active 10 (peak 10), 2.00 KiB/s (peak 2.00 KiB/s) over 10s"}, nil},
		{"idle", points{active: []float32{0, 0}, rate: []float32{0, 0}}, []string{`points="116,27 118,27"`}, []string{"spark-rate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svg := string(sparkline(&tc.p, 5*time.Second))
			if !strings.HasPrefix(svg, `<svg class="spark"`) || !strings.HasSuffix(svg, `</svg>`) {
				t.Fatalf("not an svg: %s", svg)
			}
			for _, w := range tc.want {
				if !strings.Contains(svg, w) {
					t.Errorf("lacks %q: %s", w, svg)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(svg, n) {
					t.Errorf("has %q: %s", n, svg)
				}
			}
		})
	}
}
