//go:build !unix

package auth

// lockFile is a no-op where flock is not available: writers of one process
// are still serialised by FileStore's mutex, and readers never see a partial
// file thanks to the rename, but concurrent writers in several processes may
// lose an update.
func lockFile(string) (unlock func() error, err error) {
	return func() error { return nil }, nil
}
