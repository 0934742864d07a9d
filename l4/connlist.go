package l4

// connList is an intrusive doubly linked list of connections: O(1) add and
// remove with no allocation. A connection sits in two lists at once, its
// service's and its backend's, so each list names which of the connection's
// links it uses. The owner's mutex guards the list.
type connList struct {
	head  *proxyConn
	which listKind
}

type listKind uint8

const (
	serviceList listKind = iota // every client connection of a service
	backendList                 // the established connections of a backend
)

// connLinks are a connection's links in one list.
type connLinks struct{ prev, next *proxyConn }

func (l *connList) links(c *proxyConn) *connLinks { return &c.links[l.which] }

func (l *connList) add(c *proxyConn) {
	lc := l.links(c)
	lc.prev, lc.next = nil, l.head
	if l.head != nil {
		l.links(l.head).prev = c
	}
	l.head = c
}

func (l *connList) remove(c *proxyConn) {
	lc := l.links(c)
	if lc.prev != nil {
		l.links(lc.prev).next = lc.next
	} else if l.head == c {
		l.head = lc.next
	}
	if lc.next != nil {
		l.links(lc.next).prev = lc.prev
	}
	lc.prev, lc.next = nil, nil
}

// all returns the connections in the list, for acting on them after the
// owner's mutex is released.
func (l *connList) all() []*proxyConn {
	var list []*proxyConn
	for c := l.head; c != nil; c = l.links(c).next {
		list = append(list, c)
	}
	return list
}

// abortEach ends each connection for why, resetting both sides, and returns
// how many it closed.
func abortEach(list []*proxyConn, why ending) int {
	n := 0
	for _, c := range list {
		if c.abort(why, true) {
			n++
		}
	}
	return n
}
