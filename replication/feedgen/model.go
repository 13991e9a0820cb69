package feedgen

import (
	"slices"
	"strconv"
	"strings"
)

// tag is one built-in language tag and the product families that ship it.
type tag struct {
	name   string
	ff, tb bool // shipped by Firefox / Thunderbird builds
}

// tagList holds the real feed's 100 tags ordered by frequency in the real feed (ties by
// name), with ja-JP-mac (Mozilla's macOS tag, not well-formed BCP 47) inserted before the
// rarest real tag, ta-LK, so the default 100 tags include it and 101 gives all of them.
var tagList = [...]tag{
	{"ar", true, true}, {"ast", true, true}, {"be", true, true}, {"bg", true, true},
	{"bn-BD", true, true}, {"br", true, true}, {"ca", true, true}, {"cs", true, true},
	{"cy", true, true}, {"da", true, true}, {"de", true, true}, {"dsb", true, true},
	{"el", true, true}, {"en-GB", true, true}, {"en-US", true, true}, {"es-AR", true, true},
	{"es-ES", true, true}, {"et", true, true}, {"eu", true, true}, {"fi", true, true},
	{"fr", true, true}, {"fy-NL", true, true}, {"ga-IE", true, true}, {"gd", true, true},
	{"gl", true, true}, {"he", true, true}, {"hr", true, true}, {"hsb", true, true},
	{"hu", true, true}, {"hy-AM", true, true}, {"id", true, true}, {"is", true, true},
	{"it", true, true}, {"ja", true, true}, {"ko", true, true}, {"lt", true, true},
	{"nb-NO", true, true}, {"nl", true, true}, {"nn-NO", true, true}, {"pa-IN", true, true},
	{"pl", true, true}, {"pt-BR", true, true}, {"pt-PT", true, true}, {"rm", true, true},
	{"ro", true, true}, {"ru", true, true}, {"si", true, true}, {"sk", true, true},
	{"sl", true, true}, {"sq", true, true}, {"sr", true, true}, {"sv-SE", true, true},
	{"tr", true, true}, {"uk", true, true}, {"vi", true, true}, {"zh-CN", true, true},
	{"zh-TW", true, true},
	{"ach", true, false}, {"af", true, false}, {"an", true, false}, {"as", true, false},
	{"az", true, false}, {"bn-IN", true, false}, {"brx", true, false}, {"bs", true, false},
	{"cak", true, false}, {"en-ZA", true, false}, {"eo", true, false}, {"es-CL", true, false},
	{"es-MX", true, false}, {"fa", true, false}, {"ff", true, false}, {"gn", true, false},
	{"gu-IN", true, false}, {"hi-IN", true, false}, {"ka", true, false}, {"kk", true, false},
	{"km", true, false}, {"kn", true, false}, {"kok", true, false}, {"ks", true, false},
	{"lij", true, false}, {"ltg", true, false}, {"lv", true, false}, {"mai", true, false},
	{"mk", true, false}, {"ml", true, false}, {"mr", true, false}, {"ms", true, false},
	{"ne-NP", true, false}, {"oc", true, false}, {"or", true, false}, {"sat", true, false},
	{"son", true, false}, {"ta", true, false}, {"te", true, false}, {"th", true, false},
	{"uz", true, false}, {"xh", true, false},
	{"ja-JP-mac", true, true},
	{"ta-LK", false, true},
}

// MaxLanguages is the size of the built-in tag list: the largest Options.Languages.
const MaxLanguages = len(tagList)

// Product-line families: which locale set a line's releases carry.
const (
	neutral = iota // one language-neutral update per release
	ffKind         // one update per enabled Firefox locale
	tbKind         // one update per enabled Thunderbird locale
)

// line is a product line: a sequence of releases forming supersedence chains per locale.
type line struct {
	id, name string // id prefix ("firefox-esr") and title prefix ("Firefox ESR")
	app, dir string // installer name prefix and download directory (localized lines)
	esr      bool   // the installer version carries an "esr" suffix
	kind     int
	restart  bool
	releases int // releases in the real feed: the line's weight in the release cycle
	ver      func(b []byte, n int) []byte
}

func itoa(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

// lines mirror the real feed's product lines and their release counts (591 releases).
var lines = [...]line{
	{"firefox", "Firefox", "Firefox", "firefox", false, ffKind, true, 208, func(b []byte, n int) []byte {
		b = append(itoa(b, 1+n/3), ".0"...)
		if n%3 > 0 {
			b = itoa(append(b, '.'), n%3)
		}
		return b
	}},
	{"firefox-esr", "Firefox ESR", "Firefox", "firefox", true, ffKind, true, 100, func(b []byte, n int) []byte {
		return itoa(append(itoa(b, 10+7*(n/10)), '.'), n%10+1)
	}},
	{"thunderbird", "Thunderbird", "Thunderbird", "thunderbird", false, tbKind, true, 152, func(b []byte, n int) []byte {
		return itoa(append(itoa(b, 1+n/3), '.'), n%3)
	}},
	{"thunderbird-esr", "Thunderbird ESR", "Thunderbird", "thunderbird", false, tbKind, true, 22, func(b []byte, n int) []byte {
		return itoa(append(itoa(b, 10+7*(n/12)), ".0."...), n%12+1)
	}},
	{"seamonkey", "SeaMonkey", "", "", false, neutral, false, 82, func(b []byte, n int) []byte {
		return itoa(append(itoa(b, 1+n/40), '.'), n%40)
	}},
	{"nss", "NSS", "", "", false, neutral, false, 11, func(b []byte, n int) []byte {
		return itoa(append(b, "3."...), 11+n)
	}},
	{"mozilla-suite", "Mozilla Suite", "", "", false, neutral, false, 7, func(b []byte, n int) []byte {
		return itoa(append(b, "1.7."...), 5+n)
	}},
	{"firefox-os", "Firefox OS", "", "", false, neutral, true, 4, func(b []byte, n int) []byte {
		return itoa(append(itoa(b, 1+n/4), '.'), n%4)
	}},
	{"firefox-mobile", "Firefox Mobile", "", "", false, neutral, true, 3, func(b []byte, n int) []byte {
		return append(itoa(b, 4+n), ".0"...)
	}},
	{"netscape-portable-runtime", "Netscape Portable Runtime", "", "", false, neutral, false, 1, func(b []byte, n int) []byte {
		return itoa(append(b, "4.10."...), 6+n)
	}},
	{"openh264", "OpenH264", "", "", false, neutral, false, 1, func(b []byte, n int) []byte {
		return itoa(append(b, "1."...), 3+n)
	}},
}

// realLocalizedUpdates: in the real feed 308 Firefox-family releases of 99 locales and 174
// Thunderbird-family releases of 58 locales carry 40,584 localized updates.
const realLocalizedUpdates = 40584

// model is the release arithmetic for one set of options. Releases repeat a fixed cycle of
// product lines (the real feed's mix, evenly interleaved), so release j's line and version
// index are computed, not stored: memory is O(cycle), independent of the feed size.
type model struct {
	locales  [3][]uint8 // per kind: enabled tag indices sorted by name (neutral: nil)
	counts   [len(lines)]int
	cycle    []uint8 // line index per cycle position
	ord      []int   // the release's ordinal among its line's releases within the cycle
	perCycle int     // updates per cycle
	releases int     // total releases R
	lastSize int     // updates in release R-1 (the last may carry only a prefix of its locales)
}

// newModel builds the cycle for the first nLang tags of tagList.
func newModel(nLang int) *model {
	m := &model{}
	for i := range nLang {
		if tagList[i].ff {
			m.locales[ffKind] = append(m.locales[ffKind], uint8(i))
		}
		if tagList[i].tb {
			m.locales[tbKind] = append(m.locales[tbKind], uint8(i))
		}
	}
	for _, k := range []int{ffKind, tbKind} {
		slices.SortFunc(m.locales[k], func(a, b uint8) int { return strings.Compare(tagList[a].name, tagList[b].name) })
	}
	// Neutral releases are scaled so that their share of updates stays near the real 0.27%
	// when fewer languages make localized releases smaller.
	loc := 0
	for _, l := range lines {
		if l.kind != neutral {
			loc += l.releases * len(m.locales[l.kind])
		}
	}
	scale := float64(loc) / realLocalizedUpdates
	total := 0
	for i, l := range lines {
		m.counts[i] = l.releases
		if l.kind == neutral {
			m.counts[i] = max(1, int(float64(l.releases)*scale+0.5))
		}
		total += m.counts[i]
	}
	// Smooth weighted round-robin: each line's releases spread evenly over the cycle.
	cur := make([]int, len(lines))
	seen := make([]int, len(lines))
	for range total {
		best := 0
		for i := range lines {
			cur[i] += m.counts[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		m.cycle = append(m.cycle, uint8(best))
		m.ord = append(m.ord, seen[best])
		seen[best]++
		m.perCycle += m.size(best)
	}
	return m
}

// size is the number of updates of a full release of line li.
func (m *model) size(li int) int {
	if k := lines[li].kind; k != neutral {
		return len(m.locales[k])
	}
	return 1
}

// meanRelease is the mean number of updates per release.
func (m *model) meanRelease() float64 { return float64(m.perCycle) / float64(len(m.cycle)) }

// plan fixes the number of releases so that they carry exactly updates updates.
func (m *model) plan(updates int) {
	c := len(m.cycle)
	m.releases = updates / m.perCycle * c
	rem := updates % m.perCycle
	if rem == 0 {
		m.lastSize = m.size(int(m.cycle[c-1]))
		return
	}
	for p := 0; rem > 0; p++ {
		s := m.size(int(m.cycle[p]))
		m.releases++
		m.lastSize = min(s, rem)
		rem -= m.lastSize
	}
}

// release returns release j's line, version index within the line, and update count.
func (m *model) release(j int) (li, n, size int) {
	c := len(m.cycle)
	p := j % c
	li = int(m.cycle[p])
	n = j/c*m.counts[li] + m.ord[p]
	size = m.size(li)
	if j == m.releases-1 {
		size = m.lastSize
	}
	return li, n, size
}

// tags returns the tag indices of a release of line li with size updates (nil if neutral).
func (m *model) tags(li, size int) []uint8 {
	if k := lines[li].kind; k != neutral {
		return m.locales[k][:size]
	}
	return nil
}
