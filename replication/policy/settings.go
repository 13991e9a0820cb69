package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"patchtree/store"
)

// Settings document names.
const (
	SettingsServerTasks  = "server-tasks"
	SettingsAssessment   = "assessment"
	SettingsRemediation  = "remediation"
	SettingsPluginPolicy = "plugin-policy"
)

// ServerTasks are the schedules of the server tasks: the catalog import at the parent, and the
// rules a child runs (language report, compliance summary). Empty fields keep the site's own.
type ServerTasks struct {
	CatalogImport     string `json:"catalog_import"`
	LanguageReport    string `json:"language_report,omitempty"`
	ComplianceSummary string `json:"compliance_summary,omitempty"`
}

// Assessment configures the system assessment scan on managed computers.
type Assessment struct {
	ScanInterval        string `json:"scan_interval"`
	ScanOnCatalogChange bool   `json:"scan_on_catalog_change"`
}

// Remediation configures how updates are installed.
type Remediation struct {
	MaxConcurrent int    `json:"max_concurrent"`
	Restart       string `json:"restart"`
	RestartGrace  string `json:"restart_grace"`
	RetryFailed   int    `json:"retry_failed"`
}

// PluginPolicy configures the agent plug-in.
type PluginPolicy struct {
	NotifyUser    bool   `json:"notify_user"`
	AllowPostpone bool   `json:"allow_postpone"`
	MaxPostpone   string `json:"max_postpone"`
	DownloadFrom  string `json:"download_from"`
}

// settingsDef is one settings document: its defaults and its validation.
type settingsDef struct {
	fresh    func() any
	validate func(v any) error
}

var settingsDefs = map[string]settingsDef{
	SettingsServerTasks: {
		fresh: func() any { return &ServerTasks{CatalogImport: "off"} },
		validate: func(v any) error {
			t := v.(*ServerTasks)
			if t.CatalogImport != "off" {
				if err := schedule("catalog_import", t.CatalogImport); err != nil {
					return err
				}
			}
			for _, f := range []struct{ name, v string }{{"language_report", t.LanguageReport}, {"compliance_summary", t.ComplianceSummary}} {
				if f.v != "" {
					if err := schedule(f.name, f.v); err != nil {
						return err
					}
				}
			}
			return nil
		},
	},
	SettingsAssessment: {
		fresh: func() any { return &Assessment{ScanInterval: "24h"} },
		validate: func(v any) error {
			return duration("scan_interval", v.(*Assessment).ScanInterval, time.Minute)
		},
	},
	SettingsRemediation: {
		fresh: func() any {
			return &Remediation{MaxConcurrent: 1, Restart: "prompt", RestartGrace: "15m", RetryFailed: 3}
		},
		validate: func(v any) error {
			r := v.(*Remediation)
			if r.MaxConcurrent < 1 || r.MaxConcurrent > 100 {
				return fmt.Errorf("max_concurrent must be from 1 to 100, not %d: %w", r.MaxConcurrent, store.ErrInvalid)
			}
			if r.RetryFailed < 0 || r.RetryFailed > 20 {
				return fmt.Errorf("retry_failed must be from 0 to 20, not %d: %w", r.RetryFailed, store.ErrInvalid)
			}
			if err := oneOf("restart", r.Restart, "prompt", "force", "suppress"); err != nil {
				return err
			}
			return duration("restart_grace", r.RestartGrace, 0)
		},
	},
	SettingsPluginPolicy: {
		fresh: func() any {
			return &PluginPolicy{NotifyUser: true, AllowPostpone: true, MaxPostpone: "24h", DownloadFrom: "site"}
		},
		validate: func(v any) error {
			p := v.(*PluginPolicy)
			if err := oneOf("download_from", p.DownloadFrom, "site", "vendor"); err != nil {
				return err
			}
			return duration("max_postpone", p.MaxPostpone, 0)
		},
	},
}

// SettingsNames lists the settings documents.
func SettingsNames() []string {
	var out []string
	for name := range settingsDefs {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// ParseSettings validates a settings document's body: known name, a JSON object with known
// fields of the right types, valid values. Absent fields take their defaults. It returns the
// canonical body.
func ParseSettings(name string, body []byte) (json.RawMessage, error) {
	def, ok := settingsDefs[name]
	if !ok {
		return nil, fmt.Errorf("unknown settings document %q (want one of %s): %w", name, strings.Join(SettingsNames(), ", "), store.ErrNotFound)
	}
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return nil, fmt.Errorf("settings %q: the body must be a JSON object, not null: %w", name, store.ErrInvalid)
	}
	v := def.fresh()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("settings %q: %v: %w", name, err, store.ErrInvalid)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("settings %q: trailing data after the JSON object: %w", name, store.ErrInvalid)
	}
	if err := def.validate(v); err != nil {
		return nil, fmt.Errorf("settings %q: %w", name, err)
	}
	return json.Marshal(v)
}

// ParseServerTasks decodes a server-tasks document (nil: none).
func ParseServerTasks(d *store.SettingDoc) *ServerTasks {
	if d == nil {
		return nil
	}
	var t ServerTasks
	if json.Unmarshal(d.Body, &t) != nil {
		return nil
	}
	return &t
}

// schedule checks "HH:MM" or an interval of at least a second.
func schedule(field, s string) error {
	if _, err := ParseSchedule(s, false); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func duration(field, s string, atLeast time.Duration) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < atLeast || d < 0 {
		return fmt.Errorf("%s %q: want a duration of at least %s such as \"24h\": %w", field, s, atLeast, store.ErrInvalid)
	}
	return nil
}

func oneOf(field, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want one of %s: %w", field, v, strings.Join(allowed, ", "), store.ErrInvalid)
}
