package span

// inflightOf counts the remote INVOCATIONs sp tracks.
func inflightOf(sp *Span) int {
	n := 0
	sp.inflight.Range(func(invRef, invFrom) bool { n++; return true })
	return n
}
