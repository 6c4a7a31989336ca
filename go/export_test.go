package rocksmq

// SetChanEnding sets the hook Chan's goroutine runs between the two
// signals of its end, and returns a function that removes it.
func SetChanEnding(hook func()) (reset func()) {
	chanEnding.Store(&hook)
	return func() { chanEnding.Store(nil) }
}
