package node

// TestOnlyEntryType is an entry type no version of patchtree gives a meaning to: the rolling
// upgrade test writes it (through a --test-hooks route) to stand for a type that a newer leader
// knows and an older follower does not.
const TestOnlyEntryType MessageType = 120

// ApplyTestEntry writes an entry of TestOnlyEntryType, marked ignorable or not, as a leader of a
// newer version would write a type this one does not know. Every server of this build skips the
// ignorable one and stops on the other (upgrade.go).
func (n *Node) ApplyTestEntry(ignorable bool) (uint64, error) {
	t := TestOnlyEntryType
	if ignorable {
		t |= IgnoreUnknownTypeFlag
	}
	_, idx, err := n.applyResponse(t, map[string]string{"written_by": "a newer version"})
	return idx, err
}
