package netpoll

import (
	"log/slog"
	"net"

	"github.com/switchyard-wamp/switchyard/internal/lograte"
)

// logOK reports whether a log line of level for cause, caused by the peer at remote,
// may be written now (Config.LogLimit); a suppressed line is counted for the limiter's
// "suppressed N similar lines" summary. It does not allocate for TCP peers. Safe for
// concurrent use.
func (s *Server) logOK(level slog.Level, cause string, remote net.Addr) bool {
	return s.cfg.LogLimit.Allow(level, cause, lograte.Addr(remote))
}

// infoOK is logOK for an Info line (callers need not import slog).
func (s *Server) infoOK(cause string, remote net.Addr) bool {
	return s.logOK(slog.LevelInfo, cause, remote)
}

// warnOK is logOK for a Warn line.
func (s *Server) warnOK(cause string, remote net.Addr) bool {
	return s.logOK(slog.LevelWarn, cause, remote)
}
