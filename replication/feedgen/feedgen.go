// Package feedgen writes synthetic patchtree.catalog/v1 feeds (DESIGN.md §3.1) that resemble
// the real Mozilla feed, at any size, for benchmarks and load tests of the import path.
//
// The real feed, ../shared/data/catalogs/mozilla-2005-2019.catalog.json, as measured:
//   - 17,618,491 bytes, compact JSON; 1,118 bulletins, 40,693 updates (36.4 per bulletin).
//   - Record sizes (compact JSON): 298.2 bytes per update (median 299, max 345); 4,869 bytes
//     per bulletin (median 4,578, max 15,142), of which 732 are not update_ids.
//   - update_ids per bulletin: mean 189.8, median 158, min 1, max 571 (p10 99, p90 315);
//     212,234 references in all. Releases (product versions) named per bulletin: mean 2.97,
//     1:257 2:255 3:203 4:152 5:195 6:35 7:19 8:1 10:1.
//   - Sharing: every update is named by >= 1 bulletin, mean 5.2; 17,044 by exactly one,
//     up to 55. A release is named by 5.6 bulletins on average (223 of 591 by one).
//   - 591 releases in 11 product lines: firefox 208, thunderbird 152, firefox-esr 100,
//     seamonkey 82, thunderbird-esr 22, nss 11, mozilla-suite 7, firefox-os 4,
//     firefox-mobile 3, netscape-portable-runtime 1, openh264 1. Firefox-family releases
//     carry 99 locales, Thunderbird-family 58, the other 109 releases one neutral update.
//   - Languages: 101 values: "" on 109 updates (0.27%); 57 tags on 482 updates each
//     (Firefox and Thunderbird), 42 on 308 (Firefox only), ta-LK on 174 (Thunderbird only).
//     Two- and three-letter and region tags side by side (de, dsb, pt-BR, es-ES). The real
//     feed carries no ja-JP-mac; the generator adds it (see tagList).
//   - Supersedes: one entry on 40,371 updates, none on 322 (chain heads); 323 chains per
//     product line and locale, mean length 126, median 100, max 208; none dangling.
//   - Severity: Critical 513, High 270, Moderate 228, Low 99 and eight free-text values once
//     each ("Moderate to Critical", "Critical (local)", "Medium", "Severe", ...).
//   - Vendor: "Mozilla" on all. Dates 2005-01-21 to 2019-12-03 (211 distinct), released ==
//     revised, bulletin order nearly chronological (20 steps back); 1 to 23 bulletins per
//     date (80 dates with one). Updates carry no size or sha256.
//   - Field lengths (chars, mean/min/max): bulletin title 51/17/140, description 517/23/600
//     (49% cut at exactly 600; 999 begin "Description ", 203 cite bugzilla, 35 non-ASCII,
//     288 escaped quotes); cves 1.03 per bulletin (1,009 none, max 39). Update id 19.1/8/32,
//     title 21.1/8/32, file_name 24.9/0/30, url 91.5/0/104, command_line "/S" (absent on
//     neutral updates, which also lack file_name and url); restart_required false on 102.
//
// The generator reproduces that shape arithmetically. Releases repeat the real mix of product
// lines, evenly interleaved, so a release's line, version and ids follow from its index.
// Bulletins come in same-day batches (sizes drawn from the real bulletins-per-date counts);
// the batch of bulletins [b0, b1) covers the releases [b0·R/B, b1·R/B): its first bulletin
// names all of them, the others the first k (k drawn from the real releases-per-bulletin
// counts). So every update is named, the day's leading releases by many bulletins and the
// trailing ones by few, as in the real feed. Dates span the real 2005-2019 range whatever the
// size, bulletin ids are SFSA-YYYY-NN, and versions restart at the real lines' first ones, so
// update ids may coincide with the real feed's. Memory stays constant however large the feed.
package feedgen

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

const (
	realBulletins = 1118
	realUpdates   = 40693
	defLanguages  = 100
	flushSize     = 64 << 10
	saltK         = 1
	saltText      = 2
)

var (
	firstDay = time.Date(2005, 1, 21, 0, 0, 0, 0, time.UTC)
	lastDay  = time.Date(2019, 12, 3, 0, 0, 0, 0, time.UTC)
	spanDays = int(lastDay.Sub(firstDay) / (24 * time.Hour))
)

// Options controls a synthetic feed. Zero values get defaults resembling the Mozilla feed.
type Options struct {
	Bulletins int    // number of bulletins (default 1118; derived from Updates when only Updates is set)
	Languages int    // number of distinct non-neutral language tags (default 100, max MaxLanguages)
	Updates   int    // target total updates; 0 = derived from Bulletins the way the real feed relates them
	Seed      int64  // PRNG seed (default 1)
	Feed      string // feed name (default "synthetic")
}

// Stats describes a generated feed.
type Stats struct {
	Bulletins int   // bulletins written
	Updates   int   // updates written (exactly Options.Updates when it is set)
	Languages int   // distinct non-neutral language tags among the updates
	Bytes     int64 // bytes written to w
}

// resolve applies defaults and derives the missing one of Bulletins and Updates. The real
// feed's ratio of 36.4 updates per bulletin holds at 100 languages; with fewer languages the
// releases per bulletin are kept instead, so localized releases (and the feed) shrink.
func (o Options) resolve() (Options, *model, error) {
	if o.Bulletins < 0 || o.Updates < 0 || o.Languages < 0 {
		return o, nil, errors.New("feedgen: negative option")
	}
	if o.Languages == 0 {
		o.Languages = defLanguages
	}
	if o.Languages > MaxLanguages {
		return o, nil, fmt.Errorf("feedgen: Languages %d exceeds the %d built-in tags", o.Languages, MaxLanguages)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Feed == "" {
		o.Feed = "synthetic"
	}
	m := newModel(o.Languages)
	perBulletin := realUpdates / float64(realBulletins) * m.meanRelease() / newModel(defLanguages).meanRelease()
	switch {
	case o.Bulletins == 0 && o.Updates == 0:
		o.Bulletins = realBulletins
		fallthrough
	case o.Updates == 0:
		o.Updates = max(1, int(math.Round(float64(o.Bulletins)*perBulletin)))
	case o.Bulletins == 0:
		o.Bulletins = max(1, int(math.Round(float64(o.Updates)/perBulletin)))
	}
	m.plan(o.Updates)
	return o, m, nil
}

// gen is one generation run: a reusable record buffer flushed to w in 64 KiB writes.
type gen struct {
	o     Options
	m     *model
	w     io.Writer
	buf   []byte
	text  []byte
	ver   []byte
	prev  []byte
	seen  [2]uint64 // tag indices written
	stats Stats
	err   error
}

// Generate writes a complete patchtree.catalog/v1 JSON document to w, streaming: memory does
// not grow with the feed. Output is byte-for-byte deterministic for the same Options.
func Generate(w io.Writer, opts Options) (Stats, error) {
	o, m, err := opts.resolve()
	if err != nil {
		return Stats{}, err
	}
	g := &gen{o: o, m: m, w: w, buf: make([]byte, 0, 2*flushSize)}
	g.buf = append(g.buf, `{"format":"patchtree.catalog/v1","feed":`...)
	g.buf = appendString(g.buf, []byte(o.Feed))
	g.buf = append(g.buf, `,"generated_at":"`...)
	at := lastDay.AddDate(0, 0, 1).Add(time.Duration(mix(uint64(o.Seed))%86400) * time.Second)
	g.buf = append(at.AppendFormat(g.buf, time.RFC3339), `","bulletins":[`...)
	g.bulletins()
	g.buf = append(g.buf, `],"updates":[`...)
	g.updates()
	g.buf = append(g.buf, "]}"...)
	g.flush()
	for _, s := range g.seen {
		for ; s != 0; s &= s - 1 {
			g.stats.Languages++
		}
	}
	return g.stats, g.err
}

func (g *gen) flush() {
	if g.err == nil && len(g.buf) > 0 {
		n, err := g.w.Write(g.buf)
		g.stats.Bytes += int64(n)
		if err == nil && n < len(g.buf) {
			err = io.ErrShortWrite
		}
		g.err = err
	}
	g.buf = g.buf[:0]
}

// start is the first release named by bulletin i; start(B) = R.
func (g *gen) start(i int) int {
	return int(int64(i) * int64(g.m.releases) / int64(g.o.Bulletins))
}

// day is release j's offset in days from firstDay: releases spread over the real date range.
func (g *gen) day(j int) int {
	if g.m.releases < 2 {
		return 0
	}
	return int(int64(j) * int64(spanDays) / int64(g.m.releases-1))
}

func (g *gen) bulletins() {
	year, seq := 0, 0
	batchEnd, s, e := 0, 0, 0 // the current day's batch of bulletins and its releases [s, e)
	for i := 0; i < g.o.Bulletins && g.err == nil; i++ {
		kr := newRNG(g.o.Seed, saltK, uint64(i))
		hi := e // the batch's first bulletin names all the day's releases
		if i == batchEnd {
			batchEnd = min(g.o.Bulletins, i+kr.pick(bulletinsPerDay))
			s = g.start(i)
			e = min(g.m.releases, max(s+1, g.start(batchEnd)))
			hi = e
		} else {
			hi = min(e, s+kr.pick(releasesPerBulletin))
		}
		t := firstDay.AddDate(0, 0, g.day(s))
		if t.Year() != year {
			year, seq = t.Year(), 0
		}
		seq++
		r := newRNG(g.o.Seed, saltText, uint64(i))
		b := g.buf
		if i > 0 {
			b = append(b, ',')
		}
		b = itoa(append(b, `{"id":"SFSA-`...), year)
		b = append(b, '-')
		if seq < 10 {
			b = append(b, '0')
		}
		b = itoa(b, seq)
		b = append(b, `","vendor":"Mozilla","title":`...)
		g.text = appendTitle(g.text[:0], &r, 10*(r.pick(titleLen)+1)+r.intn(10))
		b = appendString(b, g.text)
		b = append(append(append(b, `,"severity":"`...), severity(g.o.Seed, i)...), `","released":"`...)
		b = append(t.AppendFormat(b, time.DateOnly), `","revised":"`...)
		b = append(t.AppendFormat(b, time.DateOnly), `","description":`...)
		dl := 600
		if x := r.pick(descLen); x < len(descLen)-1 {
			dl = max(23, 50*x+r.intn(50))
		}
		g.text = appendDescription(g.text[:0], &r, dl)
		b = append(appendString(b, g.text), `,"cves":[`...)
		for c := range r.pick(cveCount) {
			if c > 0 {
				b = append(b, ',')
			}
			b = itoa(append(itoa(append(b, `"CVE-`...), year), '-'), 1000+r.intn(19000))
			b = append(b, '"')
		}
		b = append(b, `],"update_ids":[`...)
		first := true
		for j := s; j < hi; j++ {
			li, n, size := g.m.release(j)
			l := &lines[li]
			g.ver = l.ver(g.ver[:0], n)
			tags := g.m.tags(li, size)
			for x := 0; x < max(1, len(tags)); x++ {
				if !first {
					b = append(b, ',')
				}
				first = false
				b = append(append(append(append(b, '"'), l.id...), '-'), g.ver...)
				if tags != nil {
					b = append(append(b, '-'), tagList[tags[x]].name...)
				}
				b = append(b, '"')
			}
			if g.buf = b; len(b) >= flushSize {
				g.flush()
				b = g.buf
			}
		}
		g.buf = append(b, "]}"...)
		g.stats.Bulletins++
		if len(g.buf) >= flushSize {
			g.flush()
		}
	}
}

func (g *gen) updates() {
	macTag := uint8(MaxLanguages - 2) // ja-JP-mac
	for j := 0; j < g.m.releases && g.err == nil; j++ {
		li, n, size := g.m.release(j)
		l := &lines[li]
		g.ver = l.ver(g.ver[:0], n)
		if n > 0 {
			g.prev = l.ver(g.prev[:0], n-1)
		}
		tags := g.m.tags(li, size)
		b := g.buf
		for x := 0; x < max(1, len(tags)); x++ {
			if g.stats.Updates > 0 {
				b = append(b, ',')
			}
			g.stats.Updates++
			b = append(append(append(append(b, `{"id":"`...), l.id...), '-'), g.ver...)
			if tags == nil {
				b = append(append(append(append(b, `","title":"`...), l.name...), ' '), g.ver...)
				b = append(b, `","language":"","restart_required":`...)
				b = appendBool(b, l.restart)
				if n > 0 {
					b = append(append(append(append(b, `,"supersedes":["`...), l.id...), '-'), g.prev...)
					b = append(b, `"]`...)
				}
				b = append(b, '}')
				continue
			}
			t := tags[x]
			g.seen[t/64] |= 1 << (t % 64)
			tn := tagList[t].name
			b = append(append(append(b, '-'), tn...), `","title":"`...)
			b = append(append(append(append(b, l.name...), ' '), g.ver...), " ("...)
			b = append(append(append(b, tn...), `)","language":"`...), tn...)
			b = append(b, `","restart_required":`...)
			b = append(appendBool(b, l.restart), `,"file_name":"`...)
			if t == macTag {
				b = append(append(append(append(b, l.app...), ' '), g.ver...), `.dmg","url":"https://ftp.mozilla.org/pub/`...)
				b = append(append(append(append(b, l.dir...), "/releases/"...), g.ver...), "/mac/"...)
				b = append(append(append(append(b, tn...), '/'), l.app...), "%20"...)
				b = append(append(b, g.ver...), `.dmg"`...)
			} else {
				b = append(append(append(b, l.app...), " Setup "...), g.ver...)
				b = append(appendESR(b, l.esr), `.exe","url":"https://ftp.mozilla.org/pub/`...)
				b = append(append(append(b, l.dir...), "/releases/"...), g.ver...)
				b = append(append(append(appendESR(b, l.esr), "/win64/"...), tn...), '/')
				b = append(append(append(b, l.app...), "%20Setup%20"...), g.ver...)
				b = append(appendESR(b, l.esr), `.exe","command_line":"/S"`...)
			}
			if n > 0 {
				b = append(append(append(append(b, `,"supersedes":["`...), l.id...), '-'), g.prev...)
				b = append(append(append(b, '-'), tn...), `"]`...)
			}
			b = append(b, '}')
		}
		if g.buf = b; len(b) >= flushSize {
			g.flush()
		}
	}
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

func appendESR(b []byte, esr bool) []byte {
	if esr {
		return append(b, "esr"...)
	}
	return b
}
