package balance

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"testing"
)

// clientKeys returns n distinct IPv4 client addresses as 4-byte keys.
func clientKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = binary.BigEndian.AppendUint32(nil, 0x0a000000+uint32(i)*7919) // spread over 10/8
	}
	return keys
}

func mapKeys(p Picker, keys [][]byte, skip *Tried) []int {
	owners := make([]int, len(keys))
	for i, k := range keys {
		owners[i] = p.Pick(k, skip)
	}
	return owners
}

func TestSourceHashStable(t *testing.T) {
	members, _ := fakes(1, 1, 2, 1)
	p, err := New(SourceHash, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := net.ParseIP("203.0.113.9").To4()
	want := p.Pick(key, nil)
	for range 1000 {
		if got := p.Pick(key, nil); got != want {
			t.Fatalf("same key went to %d, then %d", want, got)
		}
	}
	// A second picker over the same members maps every key the same way.
	q, err := New(SourceHash, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := clientKeys(2000)
	a, b := mapKeys(p, keys, nil), mapKeys(q, keys, nil)
	for i := range keys {
		if a[i] != b[i] {
			t.Fatalf("key %v: %d in one picker, %d in an identical one", keys[i], a[i], b[i])
		}
	}
}

// TestSourceHashMinimalMovement: one of 10 members leaves, only its keys move,
// and they all come back when it returns. The same holds for a skipped member.
func TestSourceHashMinimalMovement(t *testing.T) {
	for _, how := range []string{"ineligible", "skipped"} {
		t.Run(how, func(t *testing.T) {
			members, fs := fakes(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
			p, err := New(SourceHash, members, nil)
			if err != nil {
				t.Fatal(err)
			}
			keys := clientKeys(10000)
			before := mapKeys(p, keys, nil)

			const gone = 3
			var skip Tried
			if how == "ineligible" {
				fs[gone].ineligible.Store(true)
			} else {
				skip.Add(gone)
			}
			after := mapKeys(p, keys, &skip)
			moved := 0
			gained := make([]int, len(members))
			for i := range keys {
				switch {
				case before[i] == gone:
					moved++
					if after[i] == gone || after[i] < 0 {
						t.Fatalf("key %v stayed on the departed member", keys[i])
					}
					gained[after[i]]++
				case after[i] != before[i]:
					t.Fatalf("key %v moved from %d to %d, though %d is still usable", keys[i], before[i], after[i], before[i])
				}
			}
			if share := float64(moved) / float64(len(keys)); share < 0.07 || share > 0.13 {
				t.Fatalf("%.3f of keys moved, want about 1/10", share)
			}
			for i, g := range gained {
				if i != gone && g == 0 {
					t.Errorf("member %d took none of the departed member's keys: %v", i, gained)
				}
			}

			fs[gone].ineligible.Store(false)
			back := mapKeys(p, keys, nil)
			for i := range keys {
				if back[i] != before[i] {
					t.Fatalf("key %v: %d before, %d after the member came back", keys[i], before[i], back[i])
				}
			}
		})
	}
}

func TestSourceHashWeights(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
	}{
		{name: "1:2", weights: []float64{1, 2}},
		{name: "1:1:1:1", weights: []float64{1, 1, 1, 1}},
		{name: "1..5", weights: []float64{1, 2, 3, 4, 5}},
		{name: "256:1", weights: []float64{256, 1, 1}},
		{name: "zero weight", weights: []float64{1, 0, 1}},
	}
	keys := clientKeys(20000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members, _ := fakes(tt.weights...)
			p, err := New(SourceHash, members, nil)
			if err != nil {
				t.Fatal(err)
			}
			counts := make([]int, len(members))
			for _, owner := range mapKeys(p, keys, nil) {
				counts[owner]++
			}
			total := 0.0
			for _, w := range tt.weights {
				total += w
			}
			for i, w := range tt.weights {
				want := float64(len(keys)) * w / total
				if got := float64(counts[i]); math.Abs(got-want) > 0.15*want {
					t.Errorf("member %d (weight %v): %v keys, want %.0f±15%%", i, w, got, want)
				}
			}
		})
	}
}

// TestSourceHashRebuildKeepsNamedMembersKeys: a reload that removes one member
// and adds another (shifting every index) moves only the keys of those two.
func TestSourceHashRebuildKeepsNamedMembersKeys(t *testing.T) {
	named := func(names ...string) []Member {
		ms := make([]Member, len(names))
		for i, n := range names {
			ms[i] = namedMember{newFake(1), n}
		}
		return ms
	}
	oldMembers := named("pg1", "pg2", "pg3", "pg4", "pg5")
	newMembers := named("pg0", "pg1", "pg3", "pg4", "pg5") // pg2 removed, pg0 added first
	oldP, err := New(SourceHash, oldMembers, nil)
	if err != nil {
		t.Fatal(err)
	}
	newP, err := New(SourceHash, newMembers, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := func(ms []Member, i int) string { return ms[i].(Named).Name() }
	keys := clientKeys(10000)
	before, after := mapKeys(oldP, keys, nil), mapKeys(newP, keys, nil)
	moved := 0
	for i := range keys {
		was, is := name(oldMembers, before[i]), name(newMembers, after[i])
		if was == is {
			continue
		}
		moved++
		if was != "pg2" && is != "pg0" {
			t.Fatalf("key %v moved from %s to %s; only pg2's keys or keys taken by pg0 may move", keys[i], was, is)
		}
	}
	if share := float64(moved) / float64(len(keys)); share > 0.5 {
		t.Fatalf("%.2f of keys moved, want about 2/5 at most", share)
	}
}

// TestSourceHashSlowStart: a ramping member takes the share of its keys that its
// ramp has reached, keeps the keys it took as the ramp goes on, and takes them
// only from where they would have gone without it.
func TestSourceHashSlowStart(t *testing.T) {
	members, fs := fakes(1, 1, 1, 1)
	ramp := rampedMember{fs[3], 1}
	members[3] = ramp
	keys := clientKeys(20000)

	fs[3].setWeight(1)
	p, err := New(SourceHash, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	full := mapKeys(p, keys, nil)
	fs[3].ineligible.Store(true)
	without := mapKeys(p, keys, nil)
	fs[3].ineligible.Store(false)
	fullShare := 0
	for _, o := range full {
		if o == 3 {
			fullShare++
		}
	}

	prev := without
	for _, f := range []float64{0.1, 0.3, 0.6, 0.9, 1} {
		fs[3].setWeight(f)
		now := mapKeys(p, keys, nil)
		taken := 0
		for i := range keys {
			switch {
			case now[i] == 3:
				taken++
				if full[i] != 3 {
					t.Fatalf("at %v: key %v went to the ramping member, which does not own it at full weight", f, keys[i])
				}
			case prev[i] == 3:
				t.Fatalf("at %v: key %v left the ramping member as its weight grew", f, keys[i])
			case now[i] != without[i]:
				t.Fatalf("at %v: key %v went to %d, not where it goes without the ramping member (%d)", f, keys[i], now[i], without[i])
			}
		}
		if got := float64(taken) / float64(fullShare); math.Abs(got-f) > 0.05 {
			t.Fatalf("at %v of its weight the ramping member holds %.3f of its keys", f, got)
		}
		prev = now
	}
}

// TestSourceHashOnlyRampingMembers: when every usable member ramps and none
// admits a key, the key still lands on a usable member, the same one each time.
func TestSourceHashOnlyRampingMembers(t *testing.T) {
	members, fs := fakes(1e-9, 1e-9)
	members[0], members[1] = rampedMember{fs[0], 1}, rampedMember{fs[1], 1}
	p, err := New(SourceHash, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := clientKeys(500)
	first := mapKeys(p, keys, nil)
	counts := make([]int, 2)
	for i, o := range first {
		if o < 0 {
			t.Fatalf("key %v found no member", keys[i])
		}
		counts[o]++
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Fatalf("counts %v: keys should spread over both members", counts)
	}
	again := mapKeys(p, keys, nil)
	for i := range keys {
		if again[i] != first[i] {
			t.Fatalf("key %v moved from %d to %d", keys[i], first[i], again[i])
		}
	}
}

func TestSourceHashV4InV6KeyMatchesV4(t *testing.T) {
	members, _ := fakes(1, 1, 1, 1, 1, 1, 1, 1)
	p, err := New(SourceHash, members, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 256 {
		ip := net.IPv4(192, 0, 2, byte(i))
		if a, b := p.Pick(ip.To4(), nil), p.Pick(ip.To16(), nil); a != b {
			t.Fatalf("%v: 4-byte form to %d, 16-byte form to %d", ip, a, b)
		}
	}
	v6 := net.ParseIP("2001:db8::1")
	if p.Pick(v6, nil) < 0 {
		t.Fatal("IPv6 key found no member")
	}
}

func TestSourceHashRingSize(t *testing.T) {
	tests := []struct {
		members    int
		weight     float64
		wantPoints int
	}{
		{members: 3, weight: 1, wantPoints: 3 * pointsPerWeight},
		{members: 2, weight: 0.5, wantPoints: pointsPerWeight},
		{members: 3000, weight: 256, wantPoints: maxRingPoints}, // capped: 87 points each
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%v", tt.members, tt.weight), func(t *testing.T) {
			weights := make([]float64, tt.members)
			for i := range weights {
				weights[i] = tt.weight
			}
			members, _ := fakes(weights...)
			p := newSourceHash(members)
			if got := len(p.points); math.Abs(float64(got-tt.wantPoints)) > float64(tt.members)/2 {
				t.Fatalf("ring of %d points, want about %d", got, tt.wantPoints)
			}
			owns := make([]int, tt.members)
			for _, o := range p.owners {
				owns[o]++
			}
			for i, n := range owns {
				if n == 0 {
					t.Fatalf("member %d has no point", i)
				}
			}
		})
	}
}
