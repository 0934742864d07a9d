package soak

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"time"
)

// progressTimeout is how long a client waits for any progress (a byte read or
// written) before it gives up. It is generous: the machine has 2 cores for the
// proxy, the backends, the clients and whatever else CI runs meanwhile.
const progressTimeout = 8 * time.Second

// dialTimeout bounds a client's connect to the proxy.
const dialTimeout = 3 * time.Second

// attempt is what one client connection did, before classification.
type attempt struct {
	id        uint64
	instance  int  // the balance-l4 instance it went through (0 without a fleet)
	long      bool // a long-lived pinging connection
	started   time.Time
	broke     time.Time // when the error was seen
	err       error     // nil: every byte came back and the exchange ended cleanly
	corrupted bool      // a byte came back that was not sent, or too many bytes
	timeout   bool
	echoed    int64
}

// payloadSource hands out pieces of one random block, so clients need not
// generate random bytes for every connection and can compare what comes back
// against the slice they sent.
type payloadSource struct {
	block    []byte
	min, max int
}

func newPayloadSource(seed uint64, minSize, maxSize int) *payloadSource {
	block := make([]byte, maxSize+1<<20)
	r := rand.New(rand.NewChaCha8(seedBytes(seed)))
	for i := 0; i+8 <= len(block); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			block[i+k] = byte(v >> (8 * k))
		}
	}
	return &payloadSource{block: block, min: minSize, max: maxSize}
}

func seedBytes(seed uint64) (s [32]byte) {
	for i := range 4 {
		v := seed + uint64(i)*0x9e3779b97f4a7c15
		for k := range 8 {
			s[i*8+k] = byte(v >> (8 * k))
		}
	}
	return s
}

// next returns a payload whose size is log-uniform between min and max: many
// small exchanges and a steady share of multi-MiB ones.
func (p *payloadSource) next(r *rand.Rand) []byte {
	lo, hi := math.Log(float64(p.min)), math.Log(float64(p.max))
	n := int(math.Exp(lo + r.Float64()*(hi-lo)))
	off := r.IntN(len(p.block) - p.max)
	return p.block[off : off+n]
}

// exchange sends the header and payload, half-closes, and reads the echo
// until EOF, comparing every byte with what was sent.
func exchange(addr string, id uint64, payload []byte, buf []byte) attempt {
	a := attempt{id: id, started: time.Now()}
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return a.fail(fmt.Errorf("dialing %s: %w", addr, err))
	}
	conn := c.(*net.TCPConn)
	defer conn.Close()
	hdr := appendHeader(make([]byte, 0, headerLen), id)

	wrote := make(chan error, 1)
	go func() { wrote <- sendAll(conn, hdr, payload) }()

	expect := func(off int64) []byte { // the expected bytes from offset off
		if off < headerLen {
			return hdr[off:]
		}
		return payload[off-headerLen:]
	}
	total := int64(headerLen + len(payload))
	for {
		conn.SetReadDeadline(time.Now().Add(progressTimeout))
		n, err := conn.Read(buf)
		for got := buf[:n]; len(got) > 0; {
			if a.echoed == total {
				a.corrupted = true
				break
			}
			want := expect(a.echoed)
			k := min(len(want), len(got))
			if !bytes.Equal(got[:k], want[:k]) {
				a.corrupted = true
				break
			}
			a.echoed += int64(k)
			got = got[k:]
		}
		if a.corrupted {
			conn.Close()
			<-wrote
			return a.fail(fmt.Errorf("echo differs from what was sent at or after byte %d", a.echoed))
		}
		if err == io.EOF && a.echoed == total {
			break
		}
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("EOF after %d of %d bytes", a.echoed, total)
			}
			conn.Close() // unblocks the writer
			werr := <-wrote
			if werr != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("%w (writer: %v)", err, werr)
			}
			return a.fail(fmt.Errorf("reading echo: %w", err))
		}
	}
	if err := <-wrote; err != nil { // cannot happen once everything came back
		return a.fail(err)
	}
	return a
}

// sendAll writes the header and payload in 64 KiB chunks, each with a
// progress deadline, then half-closes.
func sendAll(c *net.TCPConn, hdr, payload []byte) error {
	c.SetWriteDeadline(time.Now().Add(progressTimeout))
	if _, err := c.Write(hdr); err != nil {
		return fmt.Errorf("writing header: %w", err)
	}
	for len(payload) > 0 {
		n := min(len(payload), 64<<10)
		c.SetWriteDeadline(time.Now().Add(progressTimeout))
		if _, err := c.Write(payload[:n]); err != nil {
			return fmt.Errorf("writing payload: %w", err)
		}
		payload = payload[n:]
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("half-closing: %w", err)
	}
	return nil
}

// pinger holds one connection open for lifetime, sending a 64-byte ping
// every interval and checking its echo, then half-closes and expects a clean
// EOF. It ends early (cleanly) when stop is closed.
func pinger(stop <-chan struct{}, addr string, id uint64, src *payloadSource, r *rand.Rand, lifetime, interval time.Duration) attempt {
	a := attempt{id: id, long: true, started: time.Now()}
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return a.fail(fmt.Errorf("dialing %s: %w", addr, err))
	}
	conn := c.(*net.TCPConn)
	defer conn.Close()
	roundTrip := func(msg []byte) error {
		conn.SetDeadline(time.Now().Add(progressTimeout))
		if _, err := conn.Write(msg); err != nil {
			return fmt.Errorf("writing ping: %w", err)
		}
		got := make([]byte, len(msg))
		n, err := io.ReadFull(conn, got)
		if !bytes.Equal(got[:n], msg[:n]) {
			a.corrupted = true
			return errors.New("ping echo differs from the ping")
		}
		a.echoed += int64(n)
		if err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				err = fmt.Errorf("EOF after %d of %d bytes of a ping", n, len(msg))
			}
			return fmt.Errorf("reading ping echo: %w", err)
		}
		return nil
	}
	if err := roundTrip(appendHeader(nil, id)); err != nil {
		return a.fail(err)
	}
	end := time.Now().Add(lifetime)
	timer := time.NewTimer(interval)
	defer timer.Stop()
pings:
	for seq := 0; seq < maxPings && time.Now().Before(end); seq++ {
		select {
		case <-stop:
			break pings
		case <-timer.C:
			timer.Reset(interval)
		}
		off := r.IntN(len(src.block) - 64)
		if err := roundTrip(src.block[off : off+64]); err != nil {
			return a.fail(err)
		}
	}
	conn.SetDeadline(time.Now().Add(progressTimeout))
	if err := conn.CloseWrite(); err != nil {
		return a.fail(fmt.Errorf("half-closing: %w", err))
	}
	var one [1]byte
	n, err := conn.Read(one[:])
	switch {
	case n > 0:
		a.corrupted = true
		return a.fail(errors.New("bytes after the last ping's echo"))
	case err != io.EOF:
		return a.fail(fmt.Errorf("waiting for EOF after half-close: %w", err))
	}
	return a
}

// maxPings bounds a pinger's loop whatever its lifetime.
const maxPings = 100_000

func (a attempt) fail(err error) attempt {
	a.err = err
	a.broke = time.Now()
	a.timeout = errors.Is(err, os.ErrDeadlineExceeded)
	return a
}
