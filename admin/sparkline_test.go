package admin

import (
	"strings"
	"testing"
	"time"
)

func TestSparkline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     points
		slots int // the service's sample count
		want  []string
		not   []string
	}{
		{"empty", points{}, 0, []string{`<title>no samples yet</title>`, `class="spark-empty"`}, []string{"polyline"}},
		{"one sample of a full history", points{active: []float32{4}, rate: []float32{0}}, historyLen,
			[]string{`points="116,3 118,3"`, "first sample"}, []string{"spark-rate"}},
		{"the first sample: across the box", points{active: []float32{4}, rate: []float32{0}}, 1,
			[]string{`points="0,3 118,3"`}, nil},
		{"right-aligned in a full history", points{active: []float32{0, 5, 10}, rate: []float32{0, 1024, 2048}}, historyLen,
			// newest at x=118; y from 27 (0) to 3 (peak), rate area closed at the bottom
			[]string{`points="114,27 116,15 118,3"`, `d="M114,28L114,27L116,15L118,3L118,28Z"`,
				"active 10 (peak 10), 2.00 KiB/s (peak 2.00 KiB/s) over 10s"}, nil},
		{"stretched over the data present", points{active: []float32{0, 5, 10}, rate: []float32{0, 1024, 2048}}, 3,
			[]string{`points="0,27 59,15 118,3"`, `d="M0,28L0,27L59,15L118,3L118,28Z"`}, nil},
		{"newer than its service: on the service's axis", points{active: []float32{0, 5, 10}, rate: []float32{0, 0, 0}}, 5,
			[]string{`points="59,27 88.5,15 118,3"`}, []string{"spark-rate"}},
		{"more samples than slots", points{active: []float32{0, 5, 10}, rate: []float32{0, 0, 0}}, 2,
			[]string{`points="0,27 59,15 118,3"`}, nil},
		{"idle", points{active: []float32{0, 0}, rate: []float32{0, 0}}, historyLen, []string{`points="116,27 118,27"`}, []string{"spark-rate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svg := string(sparkline(&tc.p, 5*time.Second, tc.slots))
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

func TestSparkSpan(t *testing.T) {
	for n, want := range map[int]string{0: "last 5s", 1: "last 5s", 9: "last 45s", 12: "last 1m", 30: "last 2m 30s",
		historyLen: "last 5m", historyLen + 1: "last 5m"} {
		if got := sparkSpan(n, 5*time.Second); got != want {
			t.Errorf("sparkSpan(%d) = %q, want %q", n, got, want)
		}
	}
}
