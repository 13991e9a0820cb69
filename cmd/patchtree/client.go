package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

const defaultServer = "http://127.0.0.1:8400"

// clientFlags are the flags every client command takes.
type clientFlags struct {
	server string
	token  string
	output string
}

func addClientFlags(fs *pflag.FlagSet) *clientFlags {
	cf := &clientFlags{}
	fs.StringVar(&cf.server, "server", envOr("PATCHTREE_SERVER", defaultServer), "server URL (env PATCHTREE_SERVER)")
	fs.StringVar(&cf.token, "token", os.Getenv("PATCHTREE_TOKEN"), "API token (env PATCHTREE_TOKEN)")
	fs.StringVarP(&cf.output, "output", "o", "table", "output format: table or json")
	return cf
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// parse parses a client command's flags and returns its API client.
func (cf *clientFlags) parse(fs *pflag.FlagSet, args []string) (*apiClient, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return cf.client()
}

// client returns an API client after checking the output flag.
func (cf *clientFlags) client() (*apiClient, error) {
	if cf.output != "table" && cf.output != "json" {
		return nil, usageError{fmt.Errorf("--output must be table or json, not %q", cf.output)}
	}
	return cf.newClient(), nil
}

// newClient returns an API client for the server and token flags; commands with output formats
// of their own check --output themselves.
func (cf *clientFlags) newClient() *apiClient {
	return &apiClient{base: strings.TrimRight(cf.server, "/"), token: cf.token, http: &http.Client{Timeout: time.Minute},
		json: cf.output == "json"}
}

// apiClient talks JSON to a patchtree server. Writes sent to a follower are forwarded by the
// server; redirects, should a server answer with one, are followed with the body re-sent.
type apiClient struct {
	base  string
	token string
	http  *http.Client
	json  bool // --output json
}

// apiError is an error answer from the server.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// do sends a request with an optional JSON body and decodes the JSON answer into out (if not
// nil). It returns the raw answer too, for --output json.
func (c *apiClient) do(method, path string, in, out any) ([]byte, error) {
	var body io.Reader
	contentType := ""
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body, contentType = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("bad server URL %q: %w", c.base, err)
	}
	return c.send(req, contentType, out)
}

// request is do for a command's main request: with --output json it prints the server's answer
// as is and reports printed, and the command has nothing left to show.
func (c *apiClient) request(method, path string, in, out any) (printed bool, err error) {
	raw, err := c.do(method, path, in, out)
	if err != nil || !c.json {
		return false, err
	}
	printJSON(raw)
	return true, nil
}

// send sends a prepared request (with its body, if any, of the given content type) and decodes
// the JSON answer into out (if not nil), returning the raw answer as do does.
func (c *apiClient) send(req *http.Request, contentType string, out any) ([]byte, error) {
	method, path := req.Method, req.URL.RequestURI()
	resp, err := c.roundTrip(req, contentType)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decode answer from %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

// roundTrip sends req with the token (and the body's content type, if any) and returns a 2xx
// answer, whose body the caller reads and closes; any other answer is an *apiError carrying
// the server's {"error": ...} message.
func (c *apiClient) roundTrip(req *http.Request, contentType string) (*http.Response, error) {
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, unwrapURLError(err))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(raw))
	}
	return nil, &apiError{Status: resp.StatusCode, Message: e.Error}
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// printJSON writes a raw JSON answer for --output json.
func printJSON(raw []byte) {
	os.Stdout.Write(raw)
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		os.Stdout.Write([]byte{'\n'})
	}
}
