package iocount

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestCounts(t *testing.T) {
	var buf bytes.Buffer
	w := &Writer{W: &buf}
	r := &Reader{R: strings.NewReader("hello, world")}
	if _, err := io.Copy(w, r); err != nil {
		t.Fatal(err)
	}
	if w.N != 12 || r.N != 12 || buf.String() != "hello, world" {
		t.Fatalf("wrote %d, read %d, got %q; want 12, 12 and the text", w.N, r.N, buf.String())
	}
}
