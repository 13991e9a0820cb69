//go:build !unix

package csaf

// openNonblock is 0 where there are no FIFOs to block an open.
const openNonblock = 0
