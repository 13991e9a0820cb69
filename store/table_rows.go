package store

import "fmt"

// TableRows counts the rows of every table in one read transaction, by table name: the store
// sizes the metrics report.
func (s *Store) TableRows() (map[string]int, error) {
	txn := s.db.Txn(false)
	defer txn.Abort()
	out := make(map[string]int, len(tables))
	for _, t := range tables {
		it, err := txn.Get(t.name, "id")
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", t.name, err)
		}
		n := 0
		for raw := it.Next(); raw != nil; raw = it.Next() {
			n++
		}
		out[t.name] = n
	}
	return out, nil
}
