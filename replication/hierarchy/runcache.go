package hierarchy

import (
	"container/list"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The run cache: the catalog section of a run depends only on the child's ranges (now and at
// its cursor), the cursor, the catalog version and the mode, so children with the same filter
// share it. Each distinct section is built and compressed once (concurrent pulls of the same
// one wait for the first build) and kept, least recently used first out, within a memory
// bound; the per-child parts of a run (its header: run id, trigger, cascade, policies and
// settings sections and their chunks) are written beside it for every child.

// DefaultRunCacheBytes bounds the compressed catalog sections a parent keeps for reuse. A
// section larger than the bound is built for its run and not kept.
const DefaultRunCacheBytes = 256 << 20

// entryOverhead is what an entry costs besides its section's bytes and its key (list element,
// map slot, section fields).
const entryOverhead = 256

// runCache is an LRU of catalog sections by key, bounded by their compressed bytes.
type runCache struct {
	max int64

	mu       sync.Mutex
	used     int64
	lru      *list.List // of *cacheEntry, most recently used first
	entries  map[string]*list.Element
	building map[string]*flight
	stats    cacheStats
}

// cacheStats counts what the cache did (tests and the parent's log).
type cacheStats struct {
	Hits      int64 // sections served from the cache
	Shared    int64 // pulls that waited for a build another pull started
	Builds    int64 // sections built
	Evictions int64 // sections dropped to stay within the bound
	Uncached  int64 // sections built larger than the whole bound (not kept)
	Entries   int
	Bytes     int64
}

type cacheEntry struct {
	key  string
	sec  *catalogSection
	size int64
}

// flight is a build in progress; done closes when sec and err are set.
type flight struct {
	done chan struct{}
	sec  *catalogSection
	err  error
}

func newRunCache(maxBytes int64) *runCache {
	return &runCache{max: maxBytes, lru: list.New(), entries: map[string]*list.Element{}, building: map[string]*flight{}}
}

// section returns the section of key, building it with build at most once at a time per key.
// A nil cache builds every time.
func (c *runCache) section(key string, build func() (*catalogSection, error)) (*catalogSection, error) {
	if c == nil {
		return build()
	}
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		c.stats.Hits++
		c.mu.Unlock()
		return el.Value.(*cacheEntry).sec, nil
	}
	if f, ok := c.building[key]; ok {
		c.stats.Shared++
		c.mu.Unlock()
		<-f.done
		return f.sec, f.err
	}
	f := &flight{done: make(chan struct{})}
	c.building[key] = f
	c.stats.Builds++
	c.mu.Unlock()

	defer func() {
		c.mu.Lock()
		delete(c.building, key)
		if f.err == nil && f.sec != nil {
			c.add(key, f.sec)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.err = errBuildPanicked // replaced below unless build panics
	f.sec, f.err = build()
	return f.sec, f.err
}

// add keeps sec under key and evicts the least recently used entries past the bound (c.mu held).
func (c *runCache) add(key string, sec *catalogSection) {
	size := int64(len(sec.frame)+len(sec.lines)+len(key)) + entryOverhead
	if size > c.max {
		c.stats.Uncached++
		return
	}
	if el, ok := c.entries[key]; ok { // cannot happen while builds are single-flight; stay correct
		c.remove(el)
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, sec: sec, size: size})
	c.used += size
	for c.used > c.max {
		c.remove(c.lru.Back())
		c.stats.Evictions++
	}
}

func (c *runCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	c.used -= e.size
}

// snapshot returns the cache's counters.
func (c *runCache) snapshot() cacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries, s.Bytes = len(c.entries), c.used
	return s
}

// sectionKey is the canonical key of a catalog section: what it is built from. Ranges are
// sorted (matching does not depend on their order); the view digest of the ranges guards
// against two catalogs at the same version (a restored backup). A complete section depends on
// neither the cursor nor the ranges at the cursor.
func sectionKey(complete bool, ranges, old []string, cursor, to uint64, digest string) string {
	var b strings.Builder
	canon := func(rs []string) {
		s := slices.Clone(rs)
		slices.Sort(s)
		b.WriteString(strconv.Itoa(len(s)))
		for _, r := range s {
			b.WriteByte('\x1f')
			b.WriteString(r)
		}
		b.WriteByte('\x1e')
	}
	if complete {
		b.WriteString("c\x1e")
	} else {
		b.WriteString("d\x1e")
		b.WriteString(strconv.FormatUint(cursor, 10))
		b.WriteByte('\x1e')
		canon(old)
	}
	b.WriteString(strconv.FormatUint(to, 10))
	b.WriteByte('\x1e')
	canon(ranges)
	b.WriteString(digest)
	return b.String()
}
