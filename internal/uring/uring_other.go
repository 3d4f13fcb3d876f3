//go:build !linux

package uring

import "errors"

// Ring is unavailable on this platform.
type Ring struct{}

// ErrUnsupported: io_uring is Linux only.
var ErrUnsupported = errors.New("uring: io_uring unavailable")

// New reports ErrUnsupported.
func New(uint32) (*Ring, error) { return nil, ErrUnsupported }

// Close does nothing.
func (r *Ring) Close() error { return nil }

// Send reports ErrUnsupported.
func (r *Ring) Send([]int, [][]byte, []int) error { return ErrUnsupported }
