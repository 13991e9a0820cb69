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
	hreq, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return true, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(hreq)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(msg, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(msg))
	}
	err = fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
	return resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests, err
}
