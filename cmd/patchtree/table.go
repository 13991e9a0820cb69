package main

import (
	"bytes"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// tableWidth is the widest line a table prints without --wide: a terminal's 100 columns.
const tableWidth = 100

// wideUsage is the help of every table command's --wide flag.
const wideUsage = "print every column in full, however wide the lines"

// fitTable is a tabwriter whose lines are cut to tableWidth runes (the cut marked with an
// ellipsis) unless wide: the tables put their free-text column (title, error, status) last, so
// the cut falls there.
type fitTable struct {
	*tabwriter.Writer
	out  io.Writer
	buf  *bytes.Buffer
	wide bool
}

// newTable returns a table writing to w when flushed.
func newTable(w io.Writer, wide bool) *fitTable {
	buf := &bytes.Buffer{}
	return &fitTable{Writer: tabwriter.NewWriter(buf, 0, 4, 2, ' ', 0), out: w, buf: buf, wide: wide}
}

// Flush aligns the rows and writes them, each cut to tableWidth unless wide.
func (t *fitTable) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	err := writeFitted(t.out, t.buf.String(), t.wide)
	t.buf.Reset()
	return err
}

// writeFitted writes text, each line cut to tableWidth runes unless wide.
func writeFitted(w io.Writer, text string, wide bool) error {
	if wide {
		_, err := io.WriteString(w, text)
		return err
	}
	var b strings.Builder
	for line := range strings.Lines(text) {
		nl := strings.HasSuffix(line, "\n")
		line = strings.TrimRight(line, " \n")
		b.WriteString(fitLine(line))
		if nl {
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fitLine cuts line to tableWidth runes, marking the cut.
func fitLine(line string) string {
	if utf8.RuneCountInString(line) <= tableWidth {
		return line
	}
	r := []rune(line)
	return strings.TrimRight(string(r[:tableWidth-1]), " ") + "…"
}
