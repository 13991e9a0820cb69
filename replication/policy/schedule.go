package policy

import (
	"fmt"
	"strings"
	"time"

	"patchtree/store"
)

// Schedule says when a rule fires.
type Schedule struct {
	Continuous bool
	Daily      bool
	At         time.Duration // daily: offset from midnight
	Every      time.Duration // interval
}

// ParseSchedule parses "continuous" (if allowed), "HH:MM" or a Go duration of at least 1s.
func ParseSchedule(s string, allowContinuous bool) (Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "continuous" {
		if !allowContinuous {
			return Schedule{}, fmt.Errorf("%q is not allowed here: %w", s, store.ErrInvalid)
		}
		return Schedule{Continuous: true}, nil
	}
	if t, err := time.Parse("15:04", s); err == nil {
		return Schedule{Daily: true, At: time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= time.Second {
		return Schedule{Every: d}, nil
	}
	want := `"HH:MM" or an interval such as "15m"`
	if allowContinuous {
		want = `"continuous", ` + want
	}
	return Schedule{}, fmt.Errorf("schedule %q: want %s: %w", s, want, store.ErrInvalid)
}

// Next is the first firing strictly after t (zero for continuous).
func (s Schedule) Next(t time.Time) time.Time {
	switch {
	case s.Daily:
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
		next := day.Add(s.At)
		if !next.After(t) {
			next = day.AddDate(0, 0, 1).Add(s.At)
		}
		return next
	case s.Every > 0:
		return t.Add(s.Every)
	}
	return time.Time{}
}
