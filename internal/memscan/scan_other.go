//go:build !linux

package memscan

func scan(m *Marker, gc func()) (Result, error) { return Result{}, ErrUnsupported }
