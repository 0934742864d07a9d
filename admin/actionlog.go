package admin

import "github.com/rs/zerolog"

// logAction starts the log line of an operator action: who, what, on which
// backend, and how it ended. The caller adds details and sends it with
// Msg("admin action").
func (s *Server) logAction(by, action, svc, backend string, err error) *zerolog.Event {
	ev := s.log.Info()
	if err != nil {
		ev = s.log.Warn().Err(err)
	}
	ev = ev.Str("by", by).Str("action", action)
	if svc != "" {
		ev = ev.Str("service", svc).Str("backend", backend)
	}
	return ev
}
