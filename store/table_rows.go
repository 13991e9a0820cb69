package store

// TableRows counts the rows of every table in one read transaction, by table name: the store
// sizes the metrics report.
func (s *Store) TableRows() (map[string]int, error) {
	txn := s.db.Txn(false)
	defer txn.Abort()
	return tableCounts(txn)
}
