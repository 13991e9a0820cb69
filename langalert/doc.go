// Package langalert owns language ranges: parsing and validating managed ranges, RFC 4647
// matching, coverage between a parent's and a child's ranges; language reports and coverage
// alerts build on it.
package langalert
