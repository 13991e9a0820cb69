package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"patchtree/replication/importer"
)

// uploadTransport sends an upload's body once the server asked for it (Expect: 100-continue),
// and has no overall deadline: a large feed takes as long as the network needs.
var uploadTransport = &http.Transport{Proxy: http.ProxyFromEnvironment, ExpectContinueTimeout: 10 * time.Second,
	ResponseHeaderTimeout: 10 * time.Minute}

// uploadFeed streams the feed file at path to POST /v1/catalog/import/upload with the import's
// options as query parameters, and decodes the started run into p.
func uploadFeed(c *apiClient, path string, req importer.Request, p *importer.Progress) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("feed to upload: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("feed to upload: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("feed to upload: %s is not a regular file (a CSAF provider is imported from its directory or URL at the server)", path)
	}
	q := url.Values{"name": {filepath.Base(path)}}
	for k, v := range map[string]string{"kind": req.Kind, "mode": req.Mode,
		"include_vendors": strings.Join(req.IncludeVendors, ","), "exclude_vendors": strings.Join(req.ExcludeVendors, ",")} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range map[string]bool{"delete_excluded": req.DeleteExcluded, "disable_superseded": req.DisableSuperseded} {
		if v {
			q.Set(k, strconv.FormatBool(v))
		}
	}
	hr, err := http.NewRequest(http.MethodPost, c.base+"/v1/catalog/import/upload?"+q.Encode(), f)
	if err != nil {
		return nil, fmt.Errorf("bad server URL %q: %w", c.base, err)
	}
	hr.ContentLength = fi.Size()
	// The server answers a refusal (too large, busy, bad options) before it asks for the body.
	hr.Header.Set("Expect", "100-continue")
	up := *c
	up.http = &http.Client{Transport: uploadTransport}
	return up.send(hr, "application/octet-stream", p)
}
