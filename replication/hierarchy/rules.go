package hierarchy

import (
	"encoding/json"
	"fmt"

	"patchtree/replication/policy"
	"patchtree/store"
)

// Rules are the replication rules' schedules (GET/PUT /v1/replication/rules).
type Rules struct {
	// Catalog is when the catalog replicates: "continuous", a daily time "HH:MM" (server local
	// time), or an interval such as "15m" or "6h". Default "23:00".
	Catalog string `json:"catalog"`
	// Languages is when children report their languages besides at start and on change:
	// "HH:MM" daily or an interval. Default "20:00".
	Languages string `json:"languages"`
	// VerifyPercent is the share of records compared one by one after each run (0-100, default 5
	// when unset; 0 turns the record-by-record check off, the digests are still compared).
	VerifyPercent float64 `json:"verify_percent"`
	// Policies and Settings are when policies and settings documents replicate: "continuous"
	// (default: as soon as they change), "HH:MM" daily or an interval.
	Policies string `json:"policies"`
	Settings string `json:"settings"`
}

// SettingRules is the settings key of the rules.
const SettingRules = "replication-rules"

// DefaultRules are the rules of a new site.
func DefaultRules() Rules {
	return Rules{Catalog: "23:00", Languages: "20:00", VerifyPercent: 5, Policies: "continuous", Settings: "continuous"}
}

// storedRules is Rules as stored, with VerifyPercent a pointer so that an absent field (the
// default, 5) is told apart from a stored 0 (verification by sample off).
type storedRules struct {
	Rules
	VerifyPercent *float64 `json:"verify_percent"`
}

// LoadRules reads the rules from the state, with defaults for what is unset.
func LoadRules(s *store.Store) Rules {
	r := DefaultRules()
	if row, err := s.Setting(nil, SettingRules); err == nil && row != nil {
		var stored storedRules
		if json.Unmarshal(row.Value, &stored) == nil {
			if stored.Catalog != "" {
				r.Catalog = stored.Catalog
			}
			if stored.Languages != "" {
				r.Languages = stored.Languages
			}
			if stored.VerifyPercent != nil {
				r.VerifyPercent = *stored.VerifyPercent
			}
			if stored.Policies != "" {
				r.Policies = stored.Policies
			}
			if stored.Settings != "" {
				r.Settings = stored.Settings
			}
		}
	}
	return r
}

// Validate checks every schedule.
func (r *Rules) Validate() error {
	if _, err := ParseSchedule(r.Catalog, true); err != nil {
		return fmt.Errorf("catalog rule: %w", err)
	}
	if _, err := ParseSchedule(r.Languages, false); err != nil {
		return fmt.Errorf("languages rule: %w", err)
	}
	if _, err := ParseSchedule(r.Policies, true); err != nil {
		return fmt.Errorf("policies rule: %w", err)
	}
	if _, err := ParseSchedule(r.Settings, true); err != nil {
		return fmt.Errorf("settings rule: %w", err)
	}
	if r.VerifyPercent < 0 || r.VerifyPercent > 100 {
		return fmt.Errorf("verify_percent must be from 0 to 100, not %v: %w", r.VerifyPercent, store.ErrInvalid)
	}
	return nil
}

// Schedule says when a rule fires (see policy.ParseSchedule).
type Schedule = policy.Schedule

// ParseSchedule parses "continuous" (if allowed), "HH:MM" or an interval.
var ParseSchedule = policy.ParseSchedule
