package api

import (
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
}

// routes is the one route table of the API.
func (s *Server) routes() []route {
	return []route{
		{http.MethodGet, "/v1/health", public, false, s.health},
		{http.MethodGet, "/v1/status", anyRole, false, s.status},
		{http.MethodGet, "/v1/digest", anyRole, false, s.digest},

		{http.MethodGet, "/v1/languages", anyRole, false, s.getLanguages},
		{http.MethodPut, "/v1/languages", adminOnly, true, s.putLanguages},

		{http.MethodGet, "/v1/tokens", adminOnly, false, s.listTokens},
		{http.MethodPost, "/v1/tokens", adminOnly, true, s.createToken},
		{http.MethodDelete, "/v1/tokens/{id}", adminOnly, true, s.deleteToken},

		{http.MethodGet, "/v1/site/servers", adminAudit, false, s.listServers},
		{http.MethodPost, "/v1/site/servers", adminServer, true, s.joinServer},
		{http.MethodDelete, "/v1/site/servers/{id}", adminOnly, true, s.removeServer},

		{http.MethodPost, "/v1/catalog/import", adminOnly, true, s.startImport},
		{http.MethodGet, "/v1/catalog/imports", anyRole, true, s.listImports},
		{http.MethodGet, "/v1/catalog/imports/{id}", anyRole, true, s.getImport},
		{http.MethodGet, "/v1/catalog", anyRole, false, s.catalogInfo},
		{http.MethodGet, "/v1/catalog/bulletins", anyRole, false, s.listBulletins},
		{http.MethodGet, "/v1/catalog/bulletins/{id}", anyRole, false, s.getBulletin},
		{http.MethodPatch, "/v1/catalog/bulletins/{id}", adminOnly, true, s.patchBulletin},
		{http.MethodPut, "/v1/catalog/bulletins/{id}/custom-severity", adminOnly, true, s.putCustomSeverity},
		{http.MethodGet, "/v1/catalog/severities", anyRole, false, s.listSeverities},
		{http.MethodPost, "/v1/catalog/severities", adminOnly, true, s.addSeverity},
		{http.MethodPut, "/v1/catalog/severities", adminOnly, true, s.setSeverities},
		{http.MethodDelete, "/v1/catalog/severities/{name}", adminOnly, true, s.deleteSeverity},

		{http.MethodPost, "/v1/children", adminOnly, true, s.addChild},
		{http.MethodGet, "/v1/children", adminAudit, true, s.listChildren},
		{http.MethodGet, "/v1/children/{name}", adminAudit, true, s.getChild},
		{http.MethodDelete, "/v1/children/{name}", adminOnly, true, s.removeChild},
		{http.MethodGet, "/v1/alerts", anyRole, false, s.alerts},
		// Rollout joins when policy scopes exist (DESIGN.md §9); until then only admins.
		{http.MethodPost, "/v1/replication/now", adminOnly, true, s.replicateNow},
		{http.MethodGet, "/v1/replication/runs", anyRole, false, s.listRuns},
		{http.MethodGet, "/v1/replication/rules", anyRole, false, s.getRules},
		{http.MethodPut, "/v1/replication/rules", adminOnly, true, s.putRules},

		{http.MethodPost, hierarchy.ProtocolPath + "/join", public, true, s.hJoin},
		{http.MethodPut, hierarchy.ProtocolPath + "/languages", nodeOnly, true, s.hLanguages},
		{http.MethodGet, hierarchy.ProtocolPath + "/catalog", nodeOnly, true, s.hPull},
		{http.MethodPost, hierarchy.ProtocolPath + "/ack", nodeOnly, true, s.hAck},
	}
}
