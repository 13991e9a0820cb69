package hierarchy

import (
	"sort"
	"strings"
)

// sameRanges compares two range lists as sets, case-insensitively.
func sameRanges(a, b []string) bool {
	norm := func(in []string) string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = strings.ToLower(s)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	return norm(a) == norm(b)
}
