//go:build !linux

package vmdk

import "os"

// nextData cannot find holes on this system.
func nextData(*os.File, int64) (int64, bool) { return 0, false }
