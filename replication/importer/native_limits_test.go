package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// repeatReader yields n copies of b without holding them.
type repeatReader struct {
	b byte
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = r.b
	}
	r.n -= int64(len(p))
	return len(p), nil
}

func feedOf(parts ...any) io.Reader {
	var rs []io.Reader
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			rs = append(rs, strings.NewReader(v))
		case io.Reader:
			rs = append(rs, v)
		}
	}
	return io.MultiReader(rs...)
}

const feedHead = `{"format":"patchtree.catalog/v1","feed":"f",`

// TestNativeLimits: each JSON limit of the feed decoder stops a feed at the right byte with a
// message naming the limit and none of the feed's content, holding little memory.
func TestNativeLimits(t *testing.T) {
	deep := strings.Repeat(`[`, MaxFeedDepth) + strings.Repeat(`]`, MaxFeedDepth)
	var keys strings.Builder
	for i := 0; i <= MaxFeedObjectKeys; i++ {
		fmt.Fprintf(&keys, `"k%d":0,`, i)
	}
	var unknown strings.Builder
	for i := 0; i <= MaxFeedUnknownFields; i++ {
		fmt.Fprintf(&unknown, `"x%d":{"a":[1,2]},`, i)
	}
	for _, tc := range []struct {
		name string
		feed func() io.Reader
		want string
	}{
		{"a 1 GiB string in a record", func() io.Reader {
			return feedOf(feedHead+`"updates":[{"id":"`, &repeatReader{'Q', 1 << 30}, `"}]}`)
		}, fmt.Sprintf("a string at byte %d exceeds the limit of 1048576 bytes", len(feedHead)+len(`"updates":[{"id":`))},
		{"a 1 GiB string in an unknown field", func() io.Reader {
			return feedOf(feedHead+`"padding":"`, &repeatReader{'Q', 1 << 30}, `"}`)
		}, fmt.Sprintf("a string at byte %d exceeds the limit of 1048576 bytes", len(feedHead)+len(`"padding":`))},
		{"a 1 GiB key", func() io.Reader {
			return feedOf(feedHead+`"`, &repeatReader{'Q', 1 << 30}, `":1}`)
		}, fmt.Sprintf("a string at byte %d exceeds", len(feedHead))},
		{"a 1 GiB number", func() io.Reader {
			return feedOf(feedHead+`"updates":[{"id":"u","size":`, &repeatReader{'9', 1 << 30}, `}]}`)
		}, "a number or literal at byte"},
		{"a record of many small strings", func() io.Reader {
			return feedOf(feedHead+`"bulletins":[{"id":"b","update_ids":["x"`, strings.Repeat(`,"abcdefghijklmnop"`, MaxFeedRecordBytes/19+1), `]}]}`)
		}, fmt.Sprintf("a record at byte %d exceeds the limit of 16777216 bytes", len(feedHead)+len(`"bulletins":[`))},
		{"nesting", func() io.Reader { return feedOf(feedHead + `"x":` + deep + `}`) }, "nesting at byte"},
		{"keys of one object", func() io.Reader {
			return feedOf(feedHead + `"updates":[{` + keys.String() + `"id":"u"}]}`)
		}, "an object's keys at byte"},
		{"unknown fields", func() io.Reader { return feedOf(feedHead + unknown.String() + `"updates":[]}`) }, "exceeds the limit of 64 unknown fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			feed := tc.feed()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := ParseNative(feed, &fuzzHandler{}, nil)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrBadFeed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseNative: %v; want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "QQ") || strings.Contains(err.Error(), "999") || strings.Contains(err.Error(), "abcdef") {
				t.Fatalf("error echoes the feed: %v", err)
			}
			// The decoder's buffer grows by doubling until the limiter stops the token or record:
			// 8 MiB and a little for the 1 MiB token limit.
			maxAlloc := uint64(9 * MaxFeedTokenBytes)
			if strings.Contains(tc.want, "record") {
				maxAlloc = 6 * MaxFeedRecordBytes
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > maxAlloc {
				t.Fatalf("allocated %d bytes to refuse the feed", grew)
			}
		})
	}
}

// TestNativeLimitsAllowRealFeeds: values just under each limit parse.
func TestNativeLimitsAllowRealFeeds(t *testing.T) {
	long := strings.Repeat("d", MaxFeedTokenBytes-2)
	deep := strings.Repeat(`[`, MaxFeedDepth-1) + strings.Repeat(`]`, MaxFeedDepth-1)
	var unknown strings.Builder
	for i := 0; i < MaxFeedUnknownFields; i++ {
		fmt.Fprintf(&unknown, `"x%d":{"a":[1,2,{"b":null}]},`, i)
	}
	feed := feedHead + `"x":` + deep + `,` + unknown.String()[len(`"x0":{"a":[1,2,{"b":null}]},`):] +
		`"bulletins":[{"id":"b","description":"` + long + `","update_ids":["u"]}],"updates":[{"id":"u"}]}`
	h := &fuzzHandler{}
	if _, err := ParseNative(strings.NewReader(feed), h, nil); err != nil {
		t.Fatalf("ParseNative: %v", err)
	}
	if len(h.bulletins) != 1 || len(h.updates) != 1 {
		t.Fatalf("records %d %d", len(h.bulletins), len(h.updates))
	}
}

// TestJSONLimiterPassesBytes: the limiter hands the decoder exactly the feed's bytes, whatever
// the read sizes.
func TestJSONLimiterPassesBytes(t *testing.T) {
	feed := []byte(`{"format":"patchtree.catalog/v1","feed":"f","a":"\"\\","b":[1,-2.5e3,true,null,{"c":"}"}]}`)
	for _, size := range []int{1, 2, 3, 7, 64} {
		l := newJSONLimiter(bytes.NewReader(feed), feedDefaults)
		var out []byte
		buf := make([]byte, size)
		for {
			n, err := l.Read(buf)
			out = append(out, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out, feed) || len(l.stack) != 0 || l.inString || l.inScalar {
			t.Fatalf("read size %d: %q, stack %d", size, out, len(l.stack))
		}
	}
}
