package feedgen

import (
	"strconv"
	"unicode/utf8"
)

// rng is SplitMix64: tiny, fast, and fixed here so output never depends on the Go release.
type rng struct{ s uint64 }

func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// newRNG returns the stream for item i of purpose salt: random access by index, so any
// bulletin's draws are reproducible without generating the ones before it.
func newRNG(seed int64, salt, i uint64) rng {
	return rng{mix(uint64(seed)*0x9e3779b97f4a7c15 ^ mix(salt<<40^i))}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// pick draws an index with probability proportional to weights[i].
func (r *rng) pick(weights []int) int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	x := r.intn(sum)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// Distributions measured on the real feed (counts out of 1,118 bulletins).
var (
	// Releases (product versions) named per bulletin: 1..10.
	releasesPerBulletin = []int{0, 257, 255, 203, 152, 195, 35, 19, 1, 0, 1}
	// Bulletins per release date: 1..23.
	bulletinsPerDay = []int{0, 80, 32, 16, 0, 4, 3, 10, 9, 11, 7, 4, 4, 9, 6, 3, 3, 3, 2, 2, 1, 0, 0, 2}
	// Title length in chars, by tens: 10-19, 20-29, ... 140-149.
	titleLen = []int{4, 45, 151, 307, 335, 172, 76, 16, 8, 3, 0, 0, 0, 1}
	// Description length in chars, by fifties: 0-49 (min 23) ... 550-599, then exactly 600.
	descLen = []int{9, 11, 9, 3, 6, 17, 51, 62, 88, 105, 126, 81, 550}
	// CVE count per bulletin, 0..39.
	cveCount = []int{1009, 15, 10, 5, 2, 2, 4, 6, 7, 7, 10, 3, 3, 2, 2, 4, 4, 1, 4, 1, 1, 4, 0, 1, 2,
		1, 0, 2, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1}
)

// severities with their real frequencies, free-text vendor values included.
var severities = []struct {
	name string
	n    int
}{
	{"Critical", 513}, {"High", 270}, {"Moderate", 228}, {"Low", 99},
	{"Moderate (on a multiuser computer)", 1}, {"Moderate to Critical", 1}, {"Critical (local)", 1},
	{"Low (High for Mozilla Suite)", 1}, {"Severe", 1},
	{"Critical (Firefox 2.0 not affected in default configuration)", 1},
	{"Low (Critical in Gecko 1.9.1 and earlier)", 1}, {"Medium", 1},
}

// severity returns bulletin i's severity. A stride permutation of the 1,118 real slots
// reproduces the real distribution exactly in every run of 1,118 consecutive bulletins.
func severity(seed int64, i int) string {
	slot := (uint64(i)*727 + mix(uint64(seed))) % realBulletins
	for _, s := range severities {
		if slot < uint64(s.n) {
			return s.name
		}
		slot -= uint64(s.n)
	}
	return severities[0].name
}

var (
	bugKinds = []string{"Use-after-free", "Buffer overflow", "Heap overflow", "Memory corruption",
		"Crash", "Cross-site scripting", "Same-origin policy bypass", "Privilege escalation",
		"Spoofing", "Integer overflow", "Information disclosure", "Denial of service",
		"Memory safety bugs", "Out of bounds read", "Out of bounds write", "Security bypass",
		"Arbitrary code execution", "Content Security Policy bypass", "URL spoofing"}
	connectors = []string{"in", "in", "via", "with", "during", "through", "when using", "from"}
	components = []string{"JavaScript", "engine", "DOM", "worker", "destruction", "WebRTC",
		"WebGL", "canvas", "SVG", "animation", "XBL", "plugins", "IndexedDB", "Web Audio",
		"CSS", "parser", "XMLHttpRequest", "frames", "chrome", "scripts", "image", "decoding",
		"NSS", "certificate", "validation", "about:newtab", "downloads", "add-on", "installation",
		"location", "bar", "popup", "windows", "IPC", "sandbox", "fonts", "layout", "tables"}
	words = []string{"the", "a", "of", "to", "and", "in", "is", "that", "could", "be", "an",
		"attacker", "malicious", "web", "content", "page", "user", "browser", "memory", "crash",
		"exploitable", "arbitrary", "code", "security", "researcher", "reported", "vulnerability",
		"when", "with", "this", "may", "allow", "privileges", "script", "document", "object",
		"freed", "used", "after", "buffer", "overflow", "loading", "resulting", "potentially",
		"issue", "using", "Mozilla", "developers", "fixed", "several", "bugs", "evidence",
		"corruption", "under", "certain", "circumstances", "we", "presume", "some", "these",
		"enough", "effort", "run", "origin", "cross-site", "request", "data", "file", "local",
		"network", "certificate", "frame", "element", "event", "handler", "via", "JavaScript",
		"Thunderbird", "Firefox", "SeaMonkey", "email", "message", "plugin", "window", "URL"}
	quoted  = []string{"chrome", "same-origin", "View as Simple text", "secure site", "Allow", "punycode"}
	accents = []string{"can’t", "it’s", "Håvard", "André", "Jüri", "Mariusz Młyński", "–"}
)

// appendTitle appends a title of about target chars: a bug kind, a connector, components.
func appendTitle(b []byte, r *rng, target int) []byte {
	start := len(b)
	b = append(b, bugKinds[r.intn(len(bugKinds))]...)
	b = append(append(b, ' '), connectors[r.intn(len(connectors))]...)
	for len(b)-start < target-4 || len(b)-start < 17 {
		b = append(append(b, ' '), components[r.intn(len(components))]...)
	}
	return b
}

// appendDescription appends free text of exactly target chars (cut mid-word like the real
// feed's 600-char cap), with the real feed's occasional quotes and non-ASCII letters.
func appendDescription(b []byte, r *rng, target int) []byte {
	start := len(b)
	if r.intn(realBulletins) < 999 {
		b = append(b, "Description "...)
	}
	refs := r.intn(realBulletins) < 203
	extra := 0 // UTF-8 continuation bytes: the text has len(b)-start-extra runes
	for sentences := 0; len(b)-start-extra < target; sentences++ {
		if refs && sentences == 3 {
			b = append(b, "References https://bugzilla.mozilla.org/show_bug.cgi?id="...)
			b = append(strconv.AppendInt(b, int64(200000+r.intn(1400000)), 10), ' ')
			continue
		}
		n := 6 + r.intn(13)
		for w := range n {
			switch x := r.intn(1000); {
			case x < 3:
				a := accents[r.intn(len(accents))]
				b = append(b, a...)
				extra += len(a) - utf8.RuneCountInString(a)
			case x < 6:
				b = append(append(append(b, '"'), quoted[r.intn(len(quoted))]...), '"')
			default:
				word := words[r.intn(len(words))]
				if w == 0 && word[0] >= 'a' && word[0] <= 'z' {
					b = append(append(b, word[0]-'a'+'A'), word[1:]...)
				} else {
					b = append(b, word...)
				}
			}
			if w < n-1 {
				b = append(b, ' ')
			}
		}
		b = append(b, ". "...)
	}
	// Cut to target runes, then drop a trailing space.
	cut, runes := start, 0
	for cut < len(b) && runes < target {
		_, size := utf8.DecodeRune(b[cut:])
		cut += size
		runes++
	}
	b = b[:cut]
	for len(b) > start+1 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// appendString appends s as a JSON string (quotes, backslashes and controls escaped,
// invalid UTF-8 replaced by U+FFFD, as encoding/json does).
func appendString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(b, '"')
}
