package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
)

// Member is a backend that registered itself under the fleet's members
// prefix, usually with a lease of its own so that it leaves when it dies.
type Member struct {
	Address string // host:port
	Weight  *int   // nil = the discovery source's weight
}

// MembersKey is the etcd key under which a backend registers itself for a
// service: /balance-l4/<fleet>/members/<service>/<backend>.
func MembersKey(fleetName, service, backend string) string {
	return newLayout(fleetName).members + service + "/" + backend
}

// ParseMember reads a member value strictly: {"address": "host:port"} with
// an optional "weight" 0..256 (or null).
func ParseMember(data []byte) (Member, error) {
	var raw struct {
		Address *string         `json:"address"`
		Weight  json.RawMessage `json:"weight"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Member{}, fmt.Errorf("not a JSON object of the member shape: %w", err)
	}
	if dec.More() {
		return Member{}, errors.New("trailing data after the JSON object")
	}
	if raw.Address == nil {
		return Member{}, errors.New(`"address" ("host:port") is missing`)
	}
	host, port, err := net.SplitHostPort(*raw.Address)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return Member{}, fmt.Errorf(`"address" must be host:port with a port 1..65535, got %q`, *raw.Address)
	}
	m := Member{Address: *raw.Address}
	if len(raw.Weight) > 0 && string(raw.Weight) != "null" {
		var w int
		if err := json.Unmarshal(raw.Weight, &w); err != nil || w < 0 || w > MaxWeight {
			return Member{}, fmt.Errorf(`"weight" must be null or an integer 0..%d, got %s`, MaxWeight, raw.Weight)
		}
		m.Weight = &w
	}
	return m, nil
}

// parseMembersKey reads service and backend from a members key.
func (l layout) parseMembersKey(key string) (service, backend string, err error) {
	rest, _ := strings.CutPrefix(key, l.members)
	svc, b, ok := strings.Cut(rest, "/")
	if !ok || svc == "" || b == "" || strings.Contains(b, "/") {
		return "", "", fmt.Errorf("key %q: want %s<service>/<backend>", key, l.members)
	}
	return svc, b, nil
}

// Members returns the members registered for a service, by backend name,
// as this instance last saw them; while etcd is unreachable, the set
// stays as it was.
func (f *Fleet) Members(service string) map[string]Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.members[service])
}

// memberEvent applies one put (value != nil) or delete of a members key
// and reports the service it concerned, or "" when nothing changed.
func (f *Fleet) memberEvent(key string, value []byte, modRev int64) string {
	svc, backend, err := f.lay.parseMembersKey(key)
	if err != nil {
		f.countInvalid(key, modRev, err)
		return ""
	}
	if value == nil {
		f.mu.Lock()
		_, had := f.members[svc][backend]
		delete(f.members[svc], backend)
		f.mu.Unlock()
		if !had {
			return ""
		}
		return svc
	}
	m, err := ParseMember(value)
	if err != nil {
		f.countInvalid(key, modRev, err)
		return ""
	}
	f.mu.Lock()
	if f.members[svc] == nil {
		f.members[svc] = map[string]Member{}
	}
	f.members[svc][backend] = m
	f.mu.Unlock()
	return svc
}
