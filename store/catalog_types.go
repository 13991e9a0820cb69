package store

// BulletinContent is a bulletin as a feed describes it. Its hash decides whether a re-import
// changed it; the administrator's own fields (custom severity, disabled) live outside it.
type BulletinContent struct {
	ID       string `json:"id"`
	Vendor   string `json:"vendor,omitempty"`
	Title    string `json:"title"`
	Severity string `json:"severity,omitempty"` // the vendor's string, verbatim
	// Released and Revised are "YYYY-MM-DD" or an RFC 3339 time in UTC ("2006-01-02T15:04:05Z").
	Released    string   `json:"released,omitempty"`
	Revised     string   `json:"revised,omitempty"`
	Description string   `json:"description,omitempty"`
	CVEs        []string `json:"cves,omitempty"`
	// UpdateIDs are the bulletin's updates; stored bulletins list only the updates this site keeps.
	UpdateIDs []string `json:"update_ids"`
}

// UpdateContent is an update (one installable file) as a feed describes it.
type UpdateContent struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Language is a BCP 47 tag kept verbatim ("" = language-neutral); compare case-insensitively.
	Language        string   `json:"language"`
	FileName        string   `json:"file_name,omitempty"`
	URL             string   `json:"url,omitempty"`
	Size            int64    `json:"size,omitempty"`
	SHA256          string   `json:"sha256,omitempty"`
	CommandLine     string   `json:"command_line,omitempty"`
	RestartRequired bool     `json:"restart_required,omitempty"`
	Supersedes      []string `json:"supersedes,omitempty"`
}
