package proxyproto

import (
	"bytes"
	"testing"
)

func BenchmarkAppend(b *testing.B) {
	src, dst := tcpAddr("192.168.0.1:56324"), tcpAddr("192.168.0.11:443")
	buf := make([]byte, 0, MaxV1Size)
	b.Run("v1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendV1(buf[:0], src, dst)
		}
	})
	b.Run("v2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendV2(buf[:0], src, dst)
		}
	})
}

func BenchmarkRead(b *testing.B) {
	for _, name := range []string{"v1 TCP4", "v1 TCP6", "v2 TCP4", "v2 AWS with TLVs"} {
		header := validHeaders[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			r := bytes.NewReader(nil)
			for b.Loop() {
				r.Reset(header)
				if _, err := Read(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
