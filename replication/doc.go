// Package replication groups the flows that move catalog data between sites: importer (vendor to
// parent), csaf and feedgen (sources and synthetic feeds for it), and, next, the parent↔child
// flows. See DESIGN.md.
package replication
