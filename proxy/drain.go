package proxy

// Goodbyes returns one func per session open through the links; each says GOODBYE
// reason (with message) to the session's client and ends the session on its router,
// as Shutdown does for every session at once. A lame-duck drain calls them spread over
// its period. Safe for concurrent use.
func (ls *Links) Goodbyes(reason, message string) []func() {
	var out []func()
	ls.sessions.Range(func(id uint64, rs *RemoteSession) bool {
		if _, opening := ls.opening.Load(id); opening {
			return true
		}
		out = append(out, func() {
			if rs.left.Load() {
				return
			}
			if b := goodbyeBytes(rs.conn.Serializer(), reason, message); b != nil {
				_ = rs.conn.Send(b)
			}
			rs.Leave()
		})
		return true
	})
	return out
}
