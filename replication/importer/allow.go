package importer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"patchtree/replication/csaf"
	"patchtree/replication/sourcefile"
)

// ErrNotAllowed is wrapped when a source is outside every allowed import location
// (--import-allow), or reaches outside it through a symbolic link, a ".." or a redirect.
var ErrNotAllowed = errors.New("not an allowed import location")

// AllowList is the set of places imports may read: local directories (a file or CSAF provider
// directory must lie inside one, after cleaning and resolving symbolic links) and URL prefixes
// (a URL must have the same scheme, host and port, and a path at or below the prefix's path).
// The zero AllowList allows nothing.
type AllowList struct {
	dirs []allowedDir
	urls []*url.URL
}

// allowedDir is one allowed directory, as given (cleaned, absolute) and with its symbolic
// links resolved.
type allowedDir struct {
	abs, real string
}

// ParseAllowList builds an allow-list from --import-allow entries: absolute or relative
// directory paths and http(s) URL prefixes. Entries may also be comma-separated lists. A
// directory that does not exist (yet) is kept as given.
func ParseAllowList(entries []string) (*AllowList, error) {
	a := &AllowList{}
	for _, e := range entries {
		for _, item := range strings.Split(e, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			if err := a.add(item); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

func (a *AllowList) add(item string) error {
	if isURL(item) {
		u, err := parseSourceURL(item)
		if err != nil {
			return fmt.Errorf("--import-allow %q: %w", item, err)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--import-allow %q: a URL prefix has no query or fragment", item)
		}
		a.urls = append(a.urls, u)
		return nil
	}
	if strings.Contains(item, "://") {
		return fmt.Errorf("--import-allow %q: only http and https URLs can be imported", item)
	}
	abs, err := filepath.Abs(item)
	if err != nil {
		return fmt.Errorf("--import-allow %q: %w", item, err)
	}
	d := allowedDir{abs: abs, real: abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		d.real = real
	}
	a.dirs = append(a.dirs, d)
	return nil
}

// Empty reports whether the list allows nothing.
func (a *AllowList) Empty() bool { return a == nil || len(a.dirs)+len(a.urls) == 0 }

// String lists the allowed locations, for logs and documentation.
func (a *AllowList) String() string {
	if a.Empty() {
		return "(none)"
	}
	var out []string
	for _, d := range a.dirs {
		out = append(out, d.abs)
	}
	for _, u := range a.urls {
		out = append(out, u.String())
	}
	return strings.Join(out, ", ")
}

// refuse is the error for a source outside the list: it names the source and the check, never
// what is (or is not) at the source.
func refuse(src, check string) error {
	return fmt.Errorf("source %q %s (--import-allow): %w", src, check, ErrNotAllowed)
}

// Check decides whether src (a path or an http(s) URL) may be imported.
func (a *AllowList) Check(src string) error {
	if isURL(src) {
		u, err := parseSourceURL(src)
		if err != nil {
			return fmt.Errorf("source %q: %w: %w", src, err, ErrNotAllowed)
		}
		return a.CheckURL(u)
	}
	if strings.Contains(src, "://") {
		return refuse(src, "is neither a local path nor an http(s) URL")
	}
	_, _, err := a.locate(src)
	return err
}

// locate finds the allowed directory that holds path src and returns it with src relative to
// it. The cleaned absolute path must lie inside an allowed directory, and so must the path with
// its symbolic links resolved (when it exists), so neither ".." nor a link leads out.
func (a *AllowList) locate(src string) (root, rel string, err error) {
	if !filepath.IsAbs(src) {
		return "", "", refuse(src, "is not an absolute path")
	}
	clean := filepath.Clean(src)
	var d *allowedDir
	if a != nil {
		for i := range a.dirs {
			if r, ok := inside(a.dirs[i].abs, clean); ok {
				d, root, rel = &a.dirs[i], a.dirs[i].abs, r
				break
			}
			if r, ok := inside(a.dirs[i].real, clean); ok {
				d, root, rel = &a.dirs[i], a.dirs[i].real, r
				break
			}
		}
	}
	if d == nil {
		return "", "", refuse(src, "is not under an allowed import location")
	}
	real, err := filepath.EvalSymlinks(clean)
	if errors.Is(err, fs.ErrNotExist) {
		return root, rel, nil // inside an allowed directory: opening it will say it is absent
	}
	if err != nil {
		return "", "", refuse(src, "cannot be resolved inside an allowed import location")
	}
	// Open through the resolved directory with the resolved rest of the path, so that a link
	// on the way (another allowed directory's parent, say) is not refused as an escape by the
	// root; the root still stops a link swapped in after this check.
	for _, ad := range a.dirs {
		if r, ok := inside(ad.real, real); ok {
			return ad.real, r, nil
		}
	}
	return "", "", refuse(src, "leads through a symbolic link out of the allowed import locations")
}

// inside reports whether path p is dir or below it, and returns p relative to dir. Both are
// clean absolute paths; "/data" does not contain "/data2".
func inside(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// CheckURL decides whether URL u may be fetched: the same scheme, host and port as an allowed
// prefix, and a path equal to the prefix's path or below it ("/feeds" allows "/feeds/x" but not
// "/feeds2"). It is called for the source and again for every redirect.
func (a *AllowList) CheckURL(u *url.URL) error {
	src := redactURL(u)
	if u.Scheme != "http" && u.Scheme != "https" {
		return refuse(src, "is not an http(s) URL")
	}
	if hasDotSegment(u.Path) || hasDotSegment(u.EscapedPath()) {
		return refuse(src, "has a \".\" or \"..\" path segment")
	}
	if a != nil {
		for _, p := range a.urls {
			if sameOrigin(p, u) && pathUnder(p.Path, u.Path) {
				return nil
			}
		}
	}
	return refuse(src, "is not under an allowed import URL prefix")
}

// parseSourceURL parses an http(s) URL and requires a host.
func parseSourceURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

// redactURL is a URL as errors show it: without user information.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Hostname(), b.Hostname()) && effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// pathUnder reports whether path p is prefix or below it, segment by segment.
func pathUnder(prefix, p string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if p == prefix || strings.HasSuffix(prefix, "/") && strings.HasPrefix(p, prefix) {
		return true
	}
	return strings.HasPrefix(p, prefix+"/")
}

// hasDotSegment reports whether a URL path has a "." or ".." segment (also percent-encoded),
// which a server would resolve to a path outside the prefix the string seemed to be under.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		s := strings.ToLower(seg)
		s = strings.ReplaceAll(s, "%2e", ".")
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

// openAllowed opens path src for reading through the allowed directory that holds it: the
// open is done by an os.Root of that directory, so a symbolic link swapped in after Check
// still cannot lead out. Only a regular file is opened (checked before opening, then again on
// the open file), and the open does not block, so a FIFO cannot stall it. A nil list opens src
// directly, with the same file-type checks.
func (a *AllowList) openAllowed(src string) (*os.File, error) {
	if a == nil {
		return openRegular(os.Stat, os.OpenFile, src, src)
	}
	root, rel, err := a.locate(src)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("source %q: open allowed directory: %w", src, err)
	}
	defer r.Close()
	return openRegular(r.Stat, r.OpenFile, rel, src)
}

// dirFetch is the csaf.FetchFunc of a provider directory src: each fetch opens the provider
// through an os.Root of the allowed directory that holds it, so no link leads out of either.
// A nil list reads src directly.
func (a *AllowList) dirFetch(src string, watch *stallWatch) (csaf.FetchFunc, error) {
	open := func() (*os.Root, error) { return os.OpenRoot(src) }
	if a != nil {
		root, rel, err := a.locate(src)
		if err != nil {
			return nil, err
		}
		open = func() (*os.Root, error) {
			r, err := os.OpenRoot(root)
			if err != nil {
				return nil, err
			}
			defer r.Close()
			return r.OpenRoot(rel)
		}
	}
	fetch := csaf.RootFetch(open)
	return func(ctx context.Context, p string) ([]byte, error) {
		data, err := fetch(ctx, p)
		watch.touch()
		return data, err
	}, nil
}

// openRegular opens name (through stat and open) as source src with sourcefile.Open: only a
// regular file, checked before and after the open, which does not block.
func openRegular(stat func(string) (fs.FileInfo, error), open func(string, int, fs.FileMode) (*os.File, error), name, src string) (*os.File, error) {
	f, _, err := sourcefile.Open(stat, open, name)
	var nr *sourcefile.NotRegularError
	switch {
	case errors.As(err, &nr):
		return nil, notRegular(nr, src)
	case err != nil:
		return nil, fmt.Errorf("source %q: %w", src, err)
	}
	return f, nil
}

// ErrNotRegular is wrapped when a source names a FIFO, device, socket or directory where a
// file is expected.
var ErrNotRegular = errors.New("not a regular file")

// regular refuses a source that is not a regular file.
func regular(fi fs.FileInfo, src string) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return notRegular(&sourcefile.NotRegularError{Mode: fi.Mode()}, src)
}

// notRegular explains a source that is not a regular file.
func notRegular(nr *sourcefile.NotRegularError, src string) error {
	switch kind := nr.Kind(); {
	case nr.Mode.IsDir():
		return fmt.Errorf("source %q is a directory, not a feed file (a CSAF provider directory is imported with kind csaf): %w: %w", src, ErrNotRegular, ErrNotAllowed)
	case strings.HasPrefix(kind, "a "):
		return fmt.Errorf("source %q is %s: %w: %w", src, kind, ErrNotRegular, ErrNotAllowed)
	}
	return fmt.Errorf("source %q: %w: %w", src, ErrNotRegular, ErrNotAllowed)
}
