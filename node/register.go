package node

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

const registerInterval = 30 * time.Second

// registerSelf keeps this server's row in the servers table current while it follows: if the
// site records another API address for it (it restarted on a new port), it tells the leader,
// authenticating with the site's server token from the replicated state. The leader records its
// own address itself (reconcile).
func (n *Node) registerSelf() {
	defer n.wg.Done()
	select {
	case <-n.caughtUpCh:
	case <-n.shutdownCh:
		return
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t := time.NewTicker(registerInterval)
	defer t.Stop()
	for {
		if err := n.registerOnce(client); err != nil {
			n.logger.Warn("could not update this server's API address at the leader; will retry", "error", err)
		}
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		}
	}
}

func (n *Node) registerOnce(client *http.Client) error {
	if n.IsLeader() {
		return nil
	}
	state := n.State()
	row, err := state.Server(nil, n.id)
	if err != nil {
		return err
	}
	self := string(n.trans.LocalAddr())
	if row != nil && row.APIAddr == n.cfg.APIAddr && row.RaftAddr == self {
		return nil
	}
	site, err := state.Site(nil)
	if err != nil || site == nil || site.ServerBearer == "" {
		return err
	}
	leader, err := n.LeaderAPI()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(&JoinRequest{ID: n.id, RaftAddr: self, APIAddr: n.cfg.APIAddr, Name: site.Name, Role: site.Role})
	_, err = n.postJoinTo(client, strings.TrimRight(leader, "/")+"/v1/site/servers", site.ServerBearer, body)
	if err == nil {
		n.logger.Info("updated this server's API address at the leader", "api", n.cfg.APIAddr)
	}
	return err
}
