package admin

import "github.com/rs/zerolog"

// logAction starts the log line of an operator action: who (as the events
// word it, and apart: the token kind and the remote address), what, on which
// backend, and how it ended. The caller adds details and sends it with
// Msg("admin action").
func (s *Server) logAction(by actor, action, svc, backend string, err error) *zerolog.Event {
	ev := s.log.Info()
	if err != nil {
		ev = s.log.Warn().Err(err)
	}
	ev = ev.Str("by", by.String()).Str("token", by.kind).Str("remote", by.addr).Str("action", action)
	if svc != "" {
		ev = ev.Str("service", svc).Str("backend", backend)
	}
	return ev
}
