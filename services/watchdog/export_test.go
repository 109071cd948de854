package watchdog

// SetRoundLimits sets the decisions per round and per chunk (maxRound,
// maxChunk) until the returned function restores them, so tests can run a
// mass expiry of many rounds and chunks with few services.
func SetRoundLimits(round, chunk int) (restore func()) {
	r, c := maxRound, maxChunk
	maxRound, maxChunk = round, chunk
	return func() { maxRound, maxChunk = r, c }
}
