// Package replication groups the flows that move catalog data between sites: importer (vendor to
// parent), csaf and feedgen (sources and synthetic feeds for it), and hierarchy (parent↔child:
// enrolment, language alerts, filtered pull replication with verification). See DESIGN.md.
package replication
