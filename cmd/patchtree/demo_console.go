package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// demoConsole checks that the parent serves the web console and that the admin token signs in
// to it, then prints the console's address and an admin sign-in link (the page takes the token
// from the link's fragment, which never reaches a server, and removes it from the address bar).
func demoConsole(w io.Writer, hq *demoSite) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	consoleURL := strings.TrimRight(hq.url, "/") + "/ui/"
	resp, err := hc.Get(consoleURL)
	if err != nil {
		return fmt.Errorf("console at %s: %w", consoleURL, err)
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("console at %s: %w", consoleURL, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return fmt.Errorf("console at %s answered %s (%s), want the HTML page", consoleURL, resp.Status, resp.Header.Get("Content-Type"))
	}
	c := &apiClient{base: hq.url, http: hc}
	var session struct {
		Role string `json:"role"`
	}
	if _, err := c.do(http.MethodPost, "/ui/session", map[string]string{"token": hq.token}, &session); err != nil {
		return fmt.Errorf("console sign-in with the admin token: %w", err)
	}
	if session.Role != "admin" {
		return fmt.Errorf("console sign-in with the admin token gave role %q", session.Role)
	}
	fmt.Fprintf(w, "\npatchtree demo: console %s\n", consoleURL)
	fmt.Fprintf(w, "patchtree demo: sign in as admin with %s#token=%s\n", consoleURL, url.QueryEscape(hq.token))
	return nil
}
