// Package replication will hold the vendor-to-parent catalog import and the parent↔child flows:
// the pull loop that replicates each child's language-filtered view down, verification by
// digest, and the anti-entropy reports that carry languages and compliance up. See DESIGN.md.
package replication
