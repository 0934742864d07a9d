package fleet

import (
	"fmt"
	"strings"
)

// Root is the prefix of every key balance-l4 writes in etcd.
const Root = "/balance-l4/"

// Key names one backend of one service, as operator keys do.
type Key struct {
	Service string
	Backend string
}

func (k Key) String() string { return k.Service + "/" + k.Backend }

// layout builds and parses the keys of one fleet.
type layout struct {
	prefix    string // /balance-l4/<name>/
	operator  string // .../operator/
	instances string // .../instances/
	members   string // .../members/
}

func newLayout(name string) layout {
	p := Root + name + "/"
	return layout{prefix: p, operator: p + "operator/", instances: p + "instances/", members: p + "members/"}
}

// OperatorKey is the etcd key holding the operator state of one backend.
func OperatorKey(fleetName string, k Key) string {
	return newLayout(fleetName).operatorKey(k)
}

func (l layout) operatorKey(k Key) string { return l.operator + k.Service + "/" + k.Backend }

func (l layout) instanceKey(id string) string { return l.instances + id }

// parseOperatorKey reads service and backend from an operator key. A backend
// name may not contain '/', so the key has exactly two parts.
func (l layout) parseOperatorKey(key string) (Key, error) {
	rest, ok := strings.CutPrefix(key, l.operator)
	if !ok {
		return Key{}, fmt.Errorf("key %q is not under %s", key, l.operator)
	}
	svc, backend, ok := strings.Cut(rest, "/")
	if !ok || svc == "" || backend == "" || strings.Contains(backend, "/") {
		return Key{}, fmt.Errorf("key %q: want %s<service>/<backend>", key, l.operator)
	}
	return Key{Service: svc, Backend: backend}, nil
}
