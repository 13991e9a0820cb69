package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const joinRetry = time.Second

// joinSite asks an existing server of the site to add this one, retrying while the site is
// unreachable or busy. A refusal (wrong token, wrong site name or role) is fatal: the process
// should stop with that message rather than wait forever. (A member that restarts has Raft state
// and never joins again; registerSelf keeps its API address current.)
func (n *Node) joinSite() {
	defer n.wg.Done()
	req := JoinRequest{
		ID: n.id, RaftAddr: string(n.trans.LocalAddr()), APIAddr: n.cfg.APIAddr,
		Name: n.cfg.Name, Role: n.cfg.Role,
	}
	body, _ := json.Marshal(&req)
	url := strings.TrimRight(n.cfg.JoinSite, "/") + "/v1/site/servers"
	client := &http.Client{Timeout: 30 * time.Second}
	for attempt := 1; ; attempt++ {
		permanent, err := n.postJoinTo(client, url, n.cfg.JoinToken, body)
		if err == nil {
			n.logger.Info("joined site", "via", n.cfg.JoinSite)
			return
		}
		if permanent {
			n.fatal <- fmt.Errorf("join site via %s: %w", n.cfg.JoinSite, err)
			return
		}
		n.logger.Warn("join site failed; retrying", "attempt", attempt, "error", err)
		select {
		case <-n.shutdownCh:
			return
		case <-time.After(joinRetry):
		}
	}
}

// postJoinTo sends one join request; permanent reports a refusal that retrying cannot fix.
func (n *Node) postJoinTo(client *http.Client, url, token string, body []byte) (permanent bool, err error) {
	_, permanent, err = postToSite(client, url, token, body)
	return permanent, err
}

// siteAnswerMaxBytes caps an answer read from another server of the site (a join, a
// certificate).
const siteAnswerMaxBytes = 64 << 10

// postToSite POSTs a JSON body to another server of the site with a bearer token and returns a
// 2xx answer's body. For any other status err carries the server's `{"error"}` message, and
// permanent reports a refusal that retrying cannot fix (a 4xx other than 408 and 429).
func postToSite(client *http.Client, url, token string, body []byte) (answer []byte, permanent bool, err error) {
	hreq, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, true, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(resp.Body, siteAnswerMaxBytes))
	if err != nil {
		return nil, false, fmt.Errorf("read answer of %s (HTTP %d): %w", url, resp.StatusCode, err)
	}
	if resp.StatusCode/100 == 2 {
		return msg, false, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(msg, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(msg))
	}
	err = fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
	return nil, resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests, err
}
