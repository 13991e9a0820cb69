// Package csaf reads CSAF 2.0 providers (OASIS Common Security Advisory Framework) and maps
// their advisories onto the patchtree catalog (DESIGN.md §3.2).
//
// A provider is a directory or base URL holding changes.csv (one `path,timestamp` line per
// document, see [ParseChanges]), one JSON document per advisory, and a `.sha512` or `.sha256`
// file beside each document. [Read] walks a provider through a [FetchFunc] (for example
// [DirFetch]), selects the documents changed after a watermark, verifies each one against its
// hash file ([VerifyHash]) and maps it with [Parse].
//
// Mapping rules, as implemented by [Parse]:
//
//   - Bulletin: ID = document.tracking.id, Title = document.title, Released and Revised =
//     tracking.initial_release_date and tracking.current_release_date, normalized to UTC
//     "2006-01-02T15:04:05Z" (a bare "YYYY-MM-DD" is kept as is). Vendor = the name of the
//     first branch of category "vendor" in the product tree (depth first), else
//     document.publisher.name. CVEs = vulnerabilities[].cve, sorted and de-duplicated.
//     Description = the text of the first document note of category "summary", else
//     "description", else "general", verbatim.
//   - Severity: document.aggregate_severity.text verbatim (trimmed) when present; otherwise the
//     highest CVSS v3 base severity among vulnerabilities[].scores, title-cased ("Critical",
//     "High", "Medium", "Low", "None"; derived from baseScore when baseSeverity is absent);
//     otherwise "".
//   - Updates: each distinct vendor_fix remediation becomes an update. Remediations that repeat
//     across vulnerabilities with the same details (whitespace-normalized) and URL are one
//     update; their product_ids are not part of the identity. Updates are numbered in order of
//     first appearance: "<tracking.id>/fix-1", "<tracking.id>/fix-2", ... The title is the
//     details text with whitespace collapsed, shortened at a word boundary to at most
//     [MaxTitleRunes] runes with a trailing "…". The URL is remediation.url verbatim.
//   - A document without any vendor_fix (an advisory that only has mitigations or workarounds,
//     or no vulnerabilities at all) still yields one update, "<tracking.id>/advisory", titled
//     "Advisory (no vendor fix): <title>" and pointing at the document's own web page (its
//     first "self" reference that is not the .json document), so that the bulletin survives an
//     import that keeps only bulletins with at least one kept update. A warning says so.
//   - Every update carries document.lang verbatim as its language ("" when absent:
//     language-neutral).
//
// Hash files and OpenPGP signatures: Read requires a .sha512 file, falling back to .sha256;
// .asc signatures are not checked by this package.
package csaf
