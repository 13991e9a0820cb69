package csaf

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseChanges(t *testing.T) {
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, in string
		want     []Entry
	}{
		{"empty", "", nil},
		{"quoted, as in the standard", "\"2020/b.json\",\"2020-07-01T10:09:07Z\"\n\"2020/a.json\",\"2020-06-01T10:09:07Z\"\n",
			[]Entry{{"2020/b.json", ts("2020-07-01T10:09:07Z")}, {"2020/a.json", ts("2020-06-01T10:09:07Z")}}},
		{"unquoted CRLF with BOM and blank line, as CISA", "\ufeff2017/x.json,2017-11-28T00:00:00.000000Z\r\n\r\n./2017//y.json,2017-01-02T03:04:05+01:00\r\n",
			[]Entry{{"2017/x.json", ts("2017-11-28T00:00:00Z")}, {"2017/y.json", ts("2017-01-02T02:04:05Z")}}},
		{"duplicates keep the newest at the first position", "a.json,2020-01-01T00:00:00Z\nb.json,2020-01-02T00:00:00Z\na.json,2021-01-01T00:00:00Z\na.json,2019-01-01T00:00:00Z",
			[]Entry{{"a.json", ts("2021-01-01T00:00:00Z")}, {"b.json", ts("2020-01-02T00:00:00Z")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChanges(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b Entry) bool { return a.Path == b.Path && a.Timestamp.Equal(b.Timestamp) }) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseChangesErrors(t *testing.T) {
	const ok = "2017/a.json,2017-01-01T00:00:00Z\n"
	tests := []struct{ name, in, want string }{
		{"absolute path", ok + "/etc/passwd,2017-01-01T00:00:00Z\n",
			`csaf: changes.csv line 2: path: absolute path`},
		{"escapes the provider", ok + ok + "2017/../../secret.json,2017-01-01T00:00:00Z\n",
			`csaf: changes.csv line 3: path: contains a ".." element (escapes the provider)`},
		{"backslash", `2017\a.json,2017-01-01T00:00:00Z`,
			`csaf: changes.csv line 1: path: contains a backslash`},
		{"URL", `https://evil.example/a.json,2017-01-01T00:00:00Z`,
			`csaf: changes.csv line 1: path: contains a colon (URL or drive letter)`},
		{"empty path", `"",2017-01-01T00:00:00Z`, `csaf: changes.csv line 1: path: empty path`},
		{"directory", `2017/,2017-01-01T00:00:00Z`, `csaf: changes.csv line 1: path: names a directory`},
		{"one field", ok + "2017/b.json\n", "csaf: changes.csv line 2: want 2 fields (path,timestamp), got 1"},
		{"three fields", "2017/b.json,2017-01-01T00:00:00Z,x\n", "csaf: changes.csv line 1: want 2 fields (path,timestamp), got 3"},
		{"bad timestamp", ok + "2017/b.json,2017-13-01\n",
			`csaf: changes.csv line 2: 2017/b.json: invalid timestamp (want RFC 3339)`},
		{"timestamp without zone", "2017/b.json,2017-01-01T00:00:00\n",
			`csaf: changes.csv line 1: 2017/b.json: invalid timestamp (want RFC 3339)`},
		{"bare quote", ok + "20\"17/b.json,2017-01-01T00:00:00Z\n", `csaf: changes.csv line 2: bare " in non-quoted-field`},
		{"unterminated quote", ok + "\"2017/b.json,2017-01-01T00:00:00Z\n", `csaf: changes.csv line 2: extraneous or missing " in quoted-field`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChanges(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("no error; got %v", got)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\n want %q", err, tc.want)
			}
		})
	}
}
