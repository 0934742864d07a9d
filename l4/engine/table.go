package engine

import (
	"sync/atomic"
)

// Connection slots. Records are pointer-free, so the collector never scans
// them, and they sit in chunks that never move, so a Conn held by another
// goroutine may read its slot's word while the loop adds chunks. What holds
// pointers (the owner, the counters, the first bytes) sits in a parallel
// chunk of attachments.

const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 12 // 4 Mi slots per loop
)

// The slot word: the generation in the high 32 bits, flags in the low ones.
const (
	published = 1 << 0 // Start filled the slot in: the loop may use it
	claimed   = 1 << 1 // the end is decided (by the loop or by an Abort)
)

func wordOf(gen uint32, flags uint64) uint64 { return uint64(gen)<<32 | flags }

// Side flags, per socket.
const (
	sReadable = 1 << iota // bytes, FIN or an error may be waiting to be read
	sWritable             // the socket may take bytes
	sRDHUP                // the peer sent FIN: after the bytes before it, EOF
	sHUP                  // the socket hung up (both ways): read until read says so
	sEOF                  // read returned 0
)

// flow is one direction's bytes in flight: src = side d, dst = side 1-d.
type flow struct {
	buf  uint32 // slot+1 in the loop's buffers: bytes dst has not taken, buf[off:end]
	off  uint32
	end  uint32
	skip uint32 // bytes at the buffer's start not to count (a PROXY header)
	pipe uint32 // slot+1 in the loop's pipes: bytes spliced in, not out yet
	woke uint32 // bytes spliced since src last became readable
	bulk bool   // splicing: reads fill the buffer
	_    [3]byte
}

// record is one connection.
type record struct {
	word atomic.Uint64

	// Written by Start before it publishes the slot.
	fd   [2]int32 // [0] the client, [1] the backend
	idle int64    // ns; 0: none

	loopState
}

// loopState is the loop's alone; it is zeroed when the slot is freed.
type loopState struct {
	bytes   [2]int64 // by flow: [0] client -> backend, [1] backend -> client
	active  int64    // the loop clock when a byte last moved
	ksum    uint64
	dir     [2]flow
	side    [2]uint8
	early   [2]uint32 // events heard before the slot was published
	waiting bool      // in the loop's waiting list
	seen    bool      // the loop opened the slot (first event)
	dead    bool      // an Abort's command is on its way
	kseen   bool
	fin     Reason // the first FIN

	// Timer wheel links (slot+1; 0: none) and position.
	tnext, tprev uint32
	tslot        uint32
	trounds      uint32
	armed        bool
}

// attach holds a slot's pointers.
type attach struct {
	owner   Owner
	in, out *atomic.Int64
	header  []byte
	first   []byte
}

type recChunk [chunkSize]record
type attChunk [chunkSize]attach

// slots is a loop's table.
type slots struct {
	recs [maxChunks]atomic.Pointer[recChunk]
	atts [maxChunks]atomic.Pointer[attChunk]
}

func (t *slots) rec(idx uint32) *record {
	return &t.recs[idx>>chunkBits].Load()[idx&(chunkSize-1)]
}

func (t *slots) att(idx uint32) *attach {
	return &t.atts[idx>>chunkBits].Load()[idx&(chunkSize-1)]
}

// grow adds the chunk idx falls in. The caller holds the loop's mutex.
func (t *slots) grow(idx uint32) {
	c := idx >> chunkBits
	if t.recs[c].Load() == nil {
		t.atts[c].Store(new(attChunk))
		t.recs[c].Store(new(recChunk))
	}
}
