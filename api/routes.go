package api

import (
	"math"
	"net/http"

	"patchtree/replication/hierarchy"
	"patchtree/store"
)

// access says who may call a route. It is the single source of truth for permissions: the
// auth middleware enforces it and the auth matrix test walks it.
type access struct {
	public bool         // no token needed
	roles  []store.Role // roles allowed when not public
}

var (
	public     = access{public: true}
	adminOnly  = access{roles: []store.Role{store.RoleAdmin}}
	anyRole    = access{roles: []store.Role{store.RoleAdmin, store.RoleRollout, store.RoleAuditor, store.RoleAgent}}
	adminAudit = access{roles: []store.Role{store.RoleAdmin, store.RoleAuditor}}
	// adminRollout is policies and their replication.
	adminRollout = access{roles: []store.Role{store.RoleAdmin, store.RoleRollout}}
	// reports are compliance reports: agents post scans but read no report.
	reports = access{roles: []store.Role{store.RoleAdmin, store.RoleRollout, store.RoleAuditor}}
	// agentAdmin posts scans.
	agentAdmin = access{roles: []store.Role{store.RoleAdmin, store.RoleAgent}}
	// adminServer lets the site's own servers re-register their addresses.
	adminServer = access{roles: []store.Role{store.RoleAdmin, store.RoleServer}}
	// nodeOnly is a child site's credential at its parent.
	nodeOnly = access{roles: []store.Role{store.RoleNode}}
)

// allows reports whether role may call a route with this access.
func (a access) allows(role store.Role) bool {
	for _, r := range a.roles {
		if r == role {
			return true
		}
	}
	return false
}

// route is one entry of the route table.
type route struct {
	method string
	path   string
	access access
	// onLeader marks a route the leader serves: every write of replicated state, and reads of
	// what only the leader knows (live import progress). A follower forwards them.
	onLeader bool
	handler  handlerFunc
	// maxBody overrides Options.MaxBodyBytes for this route (0: the default).
	maxBody int64
}

// key names a route "METHOD path", as auditedInEntry, auditOnly, routeDeadlines and joinRoute do.
func (rt route) key() string { return rt.method + " " + rt.path }

// routes is the one route table of the API.
func (s *Server) routes() []route {
	rts := []route{
		{http.MethodGet, "/v1/health", public, false, s.health, 0},
		{http.MethodGet, "/v1/status", anyRole, false, s.status, 0},
		{http.MethodGet, "/v1/digest", anyRole, false, s.digest, 0},
		{http.MethodGet, "/metrics", s.metricsAccess(), false, s.metrics, 0},

		{http.MethodGet, "/v1/languages", anyRole, false, s.getLanguages, 0},
		{http.MethodPut, "/v1/languages", adminOnly, true, s.putLanguages, 0},

		{http.MethodGet, "/v1/tokens", adminOnly, false, s.listTokens, 0},
		{http.MethodPost, "/v1/tokens", adminOnly, true, s.createToken, 0},
		{http.MethodDelete, "/v1/tokens/{id}", adminOnly, true, s.deleteToken, 0},

		{http.MethodGet, "/v1/site/servers", adminAudit, false, s.listServers, 0},
		{http.MethodPost, "/v1/site/servers", adminServer, true, s.joinServer, 0},
		{http.MethodDelete, "/v1/site/servers/{id}", adminOnly, true, s.removeServer, 0},
		// Served by the leader, which writes the issue's audit entry before handing it out.
		{http.MethodPost, "/v1/site/certificates", adminOnly, true, s.issueCertificate, 0},

		{http.MethodPost, "/v1/catalog/import", adminOnly, true, s.startImport, 0},
		// The body is the feed itself; the importer bounds it by --catalog-max-bytes.
		{http.MethodPost, "/v1/catalog/import/upload", adminOnly, true, s.uploadImport, math.MaxInt64},
		{http.MethodGet, "/v1/catalog/imports", anyRole, true, s.listImports, 0},
		{http.MethodGet, "/v1/catalog/imports/{id}", anyRole, true, s.getImport, 0},
		{http.MethodDelete, "/v1/catalog/imports/{id}", adminOnly, true, s.cancelImport, 0},
		{http.MethodGet, "/v1/catalog", anyRole, false, s.catalogInfo, 0},
		{http.MethodGet, "/v1/catalog/digest", anyRole, false, s.catalogDigest, 0},
		{http.MethodGet, "/v1/catalog/bulletins", anyRole, false, s.listBulletins, 0},
		{http.MethodGet, "/v1/catalog/bulletins/{id}", anyRole, false, s.getBulletin, 0},
		{http.MethodPatch, "/v1/catalog/bulletins/{id}", adminOnly, true, s.patchBulletin, 0},
		{http.MethodPut, "/v1/catalog/bulletins/{id}/custom-severity", adminOnly, true, s.putCustomSeverity, 0},
		{http.MethodGet, "/v1/catalog/severities", anyRole, false, s.listSeverities, 0},
		{http.MethodPost, "/v1/catalog/severities", adminOnly, true, s.addSeverity, 0},
		{http.MethodPut, "/v1/catalog/severities", adminOnly, true, s.setSeverities, 0},
		{http.MethodDelete, "/v1/catalog/severities/{name}", adminOnly, true, s.deleteSeverity, 0},

		{http.MethodPost, "/v1/children", adminOnly, true, s.addChild, 0},
		{http.MethodGet, "/v1/children", adminAudit, true, s.listChildren, 0},
		{http.MethodGet, "/v1/children/{name}", adminAudit, true, s.getChild, 0},
		{http.MethodDelete, "/v1/children/{name}", adminOnly, true, s.removeChild, 0},
		{http.MethodPost, "/v1/children/{name}/rotate", adminOnly, true, s.rotateChild, 0},
		{http.MethodGet, "/v1/alerts", anyRole, false, s.alerts, 0},
		{http.MethodGet, "/v1/tree", adminAudit, false, s.tree, 0},
		// Rollout may replicate now for policy scopes only: the handler checks the scope.
		// A follower serves replicate-now with wait itself (the leader takes the request), so that
		// the wait outlives the leader; the handler forwards everything else.
		{http.MethodPost, "/v1/replication/now", adminRollout, false, s.replicateNow, 0},
		{http.MethodGet, "/v1/replication/runs", anyRole, false, s.listRuns, 0},
		{http.MethodGet, "/v1/replication/rules", anyRole, false, s.getRules, 0},
		{http.MethodPut, "/v1/replication/rules", adminOnly, true, s.putRules, 0},

		{http.MethodGet, "/v1/policies", adminRollout, false, s.listPolicies, 0},
		{http.MethodPost, "/v1/policies", adminRollout, true, s.createPolicy, 0},
		{http.MethodGet, "/v1/policies/{id}", adminRollout, false, s.getPolicy, 0},
		{http.MethodPatch, "/v1/policies/{id}", adminRollout, true, s.patchPolicy, 0},
		{http.MethodDelete, "/v1/policies/{id}", adminRollout, true, s.deletePolicy, 0},
		{http.MethodGet, "/v1/settings", anyRole, false, s.listSettings, 0},
		{http.MethodGet, "/v1/settings/{name}", anyRole, false, s.getSettings, 0},
		{http.MethodPut, "/v1/settings/{name}", adminOnly, true, s.putSettings, 0},
		{http.MethodGet, "/v1/audit", adminAudit, false, s.listAudit, 0},
		// A backup is served by the leader (the latest committed state) and restored there; the
		// upload's own limit is --max-snapshot-bytes, checked by the handler.
		{http.MethodGet, "/v1/snapshot", adminOnly, true, s.getSnapshot, 0},
		{http.MethodPut, "/v1/snapshot", adminOnly, true, s.putSnapshot, math.MaxInt64},

		// A scan batch of many computers: a thousand results each is about 40 KB of JSON.
		{http.MethodPost, "/v1/scans", agentAdmin, true, s.postScans, 256 << 20},
		{http.MethodGet, "/v1/compliance", reports, false, s.getCompliance, 0},
		{http.MethodGet, "/v1/compliance/bulletins", reports, false, s.getComplianceBulletins, 0},

		{http.MethodPost, hierarchy.ProtocolPath + "/join", public, true, s.hJoin, 0},
		{http.MethodPut, hierarchy.ProtocolPath + "/languages", nodeOnly, true, s.hLanguages, 2 << 20},
		{http.MethodGet, hierarchy.ProtocolPath + "/catalog", nodeOnly, true, s.hPull, 0},
		// An acknowledgement carries the verification sample: verify_percent of a child's rows.
		{http.MethodPost, hierarchy.ProtocolPath + "/ack", nodeOnly, true, s.hAck, 64 << 20},
		{http.MethodPost, hierarchy.ProtocolPath + "/compliance", nodeOnly, true, s.hCompliance, 32 << 20},
		{http.MethodGet, hierarchy.ProtocolPath + hierarchy.SitePath, nodeOnly, false, s.hSite, 0},
	}
	rts = append(rts, s.testRoutes()...)
	return append(rts, s.consoleRoutes()...)
}

// auditedInEntry are the writes whose handler passes the caller to the backend, which applies
// the change with its audit entry in the same Raft entry (node.AuditedRequest; policies and
// settings documents carry theirs in their own request).
var auditedInEntry = map[string]bool{
	"PUT /v1/languages":                              true,
	"POST /v1/tokens":                                true,
	"DELETE /v1/tokens/{id}":                         true,
	"POST /v1/site/servers":                          true,
	"DELETE /v1/site/servers/{id}":                   true,
	"PATCH /v1/catalog/bulletins/{id}":               true,
	"PUT /v1/catalog/bulletins/{id}/custom-severity": true,
	"POST /v1/catalog/severities":                    true,
	"PUT /v1/catalog/severities":                     true,
	"DELETE /v1/catalog/severities/{name}":           true,
	"POST /v1/children":                              true,
	"DELETE /v1/children/{name}":                     true,
	"POST /v1/children/{name}/rotate":                true,
	"PUT /v1/replication/rules":                      true,
	"POST /v1/policies":                              true,
	"PATCH /v1/policies/{id}":                        true,
	"DELETE /v1/policies/{id}":                       true,
	"PUT /v1/settings/{name}":                        true,
}

// auditOnly names the audit log action of each write whose own change is not a Raft entry it
// could share: an import's change is written later by the import; issuing a certificate writes
// nothing (its handler records it before handing the material out); replicate-now and snapshots
// record themselves in their handlers. Each is recorded by an audit entry of its own.
var auditOnly = map[string]string{
	"POST /v1/catalog/import":         "catalog.import",
	"POST /v1/catalog/import/upload":  "catalog.import",
	"DELETE /v1/catalog/imports/{id}": "catalog.import-cancel",
	"POST /v1/replication/now":        "replicate-now",
	"GET /v1/snapshot":                "snapshot.save",
	"PUT /v1/snapshot":                "snapshot.restore",
	"POST /v1/site/certificates":      "site.certificate-issue",
}

// notAudited are the writes an administrator may make that are data, not administration:
// scan results (an agent's job; an admin may post them too), and the test-only routes.
var notAudited = map[string]bool{
	"POST /v1/scans":           true,
	"POST /v1/test/raft-entry": true,
}
