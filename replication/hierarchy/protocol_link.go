package hierarchy

import "time"

// Protocol types of the link itself: where the parent site's servers answer, and the signed
// ticket that lets any server of the parent site record a run's acknowledgement.

// SitePath answers a child (node credential) with the API addresses of every server of the
// parent site, from the parent's replicated servers table: GET ProtocolPath + SitePath.
const SitePath = "/site"

// SiteAddresses is the answer of GET /v1/hierarchy/v1/site.
type SiteAddresses struct {
	ParentName string `json:"parent_name"`
	ParentSite string `json:"parent_site_id"`
	// URLs are the API base URLs of the parent site's servers, in the servers table's order.
	URLs []string `json:"urls"`
}

// RevisionParam is the pull's query parameter by which a child says which revision of protocol
// v1 it reads. RevisionCompact (2): the frames written for the child use the run dictionary
// (RunDecoderDict), the ticket is compact ("2." then base64url of the run's start and a 128-bit
// signature), and the answer has no X-Patchtree-Run (the run id is the header's). A pull
// without it is answered as before (revision 1), so children that predate it are unchanged.
const (
	RevisionParam   = "rev"
	RevisionCompact = 2
)

// RunTicketHeader carries a run's ticket (RunTicket without Header, JSON then base64url) on
// the answer to a pull; the child echoes it, with the header, in its acknowledgement.
const RunTicketHeader = "X-Patchtree-Run-Ticket"

// RunTicket is the parent site's signature over a run it handed to a child: for whom, when the
// run started, and its header (FirstChunk aside, so a resumed stream carries the same ticket).
// The key is in the parent site's replicated state, so a server that became leader after the
// run was built (and never held it in memory) verifies the ticket and records the run.
type RunTicket struct {
	Child     string    `json:"child"`
	StartedAt time.Time `json:"started_at"`
	Signature string    `json:"signature"`
	// Header is the run's header as the child received it (only in an acknowledgement).
	Header *RunHeader `json:"header,omitempty"`
}

// TicketedAck is an acknowledgement with the ticket of its run: Ack's fields, and "ticket". A
// child sends the ticket when the parent's server does not hold the run (it answered 404 to the
// acknowledgement without one): a new leader after a failover. A compact ticket comes back with
// its "signature" ("2.…") and "started_at" as read from it, and no "child" (the credential's).
type TicketedAck struct {
	Ack
	Ticket *RunTicket `json:"ticket,omitempty"`
}
