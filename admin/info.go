package admin

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Info is GET /api/v1/info: which process answers. During an upgrade (SPEC
// §8) the old and the new process share the admin listener, and this tells
// them apart; after it, the new process's version shows here.
type Info struct {
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

func (s *Server) getInfo(c echo.Context) error {
	return c.JSON(http.StatusOK, s.info)
}
