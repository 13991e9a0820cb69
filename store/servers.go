package store

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// Server is one Raft server of this site with the address of its HTTP API, so that followers can
// forward writes to whichever server leads. Raft's own configuration stays the source of truth
// for membership; this table only adds what Raft cannot carry.
type Server struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	RaftIndex
}

// UpsertServer records or updates a server's addresses.
func (s *Store) UpsertServer(idx uint64, srv *Server) error {
	if srv.ID == "" || srv.APIAddr == "" {
		return fmt.Errorf("server needs id and api address: %w", ErrInvalid)
	}
	row := *srv
	return s.write(func(txn *memdb.Txn) error { return upsertRow(txn, tableServers, idx, row.ID, &row) })
}

// DeleteServer forgets a server.
func (s *Store) DeleteServer(idx uint64, id string) error {
	return s.write(func(txn *memdb.Txn) error { return deleteRow(txn, tableServers, idx, id) })
}

// Server returns the server with the given id, or nil.
func (s *Store) Server(ws memdb.WatchSet, id string) (*Server, error) {
	raw, err := first(s.db.Txn(false), ws, tableServers, id)
	if raw == nil || err != nil {
		return nil, err
	}
	return raw.(*Server), nil
}

// Servers lists the recorded servers ordered by id.
func (s *Store) Servers(ws memdb.WatchSet) ([]*Server, error) {
	return all[*Server](s.db.Txn(false), ws, tableServers)
}
