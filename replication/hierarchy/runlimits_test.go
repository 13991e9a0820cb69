package hierarchy

import (
	"io"
	"strings"
	"testing"
)

func TestLineCap(t *testing.T) {
	ok := strings.Repeat("a", 10) + "\n" + strings.Repeat("b", 10) + "\n"
	got, err := io.ReadAll(&lineCap{r: strings.NewReader(ok), limit: 10})
	if err != nil || string(got) != ok {
		t.Fatalf("lines at the limit: %q, %v", got, err)
	}
	long := "ab\n" + strings.Repeat("c", 11) + "\nd\n"
	got, err = io.ReadAll(&lineCap{r: strings.NewReader(long), limit: 10})
	if err == nil || err.Error() != "a line of the run exceeds 10 bytes" || string(got) != "ab\n"+strings.Repeat("c", 10) {
		t.Fatalf("a line over the limit: %q, %v", got, err)
	}
}
