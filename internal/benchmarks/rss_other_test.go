//go:build !linux

package benchmarks

import "errors"

// peakRSS is measured from /proc/self/status, which only Linux has.
func peakRSS() (int64, error) {
	return 0, errors.New("peak RSS is measured on Linux only")
}
