//go:build !linux

package memscan

func scan(m *Marker) (Result, error) { return Result{}, ErrUnsupported }
