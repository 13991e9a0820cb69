package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"patchtree/store"
)

func TestSettingsNames(t *testing.T) {
	want := []string{"assessment", "plugin-policy", "remediation", "server-tasks"}
	if got := SettingsNames(); !reflect.DeepEqual(got, want) {
		t.Fatalf("SettingsNames() = %v, want %v", got, want)
	}
}

func TestParseSettingsDefaults(t *testing.T) {
	want := map[string]string{
		"server-tasks":  `{"catalog_import":"off"}`,
		"assessment":    `{"scan_interval":"24h","scan_on_catalog_change":false}`,
		"remediation":   `{"max_concurrent":1,"restart":"prompt","restart_grace":"15m","retry_failed":3}`,
		"plugin-policy": `{"notify_user":true,"allow_postpone":true,"max_postpone":"24h","download_from":"site"}`,
	}
	for name, w := range want {
		for _, body := range []string{`{}`, " {\n}\n "} {
			got, err := ParseSettings(name, []byte(body))
			if err != nil || string(got) != w {
				t.Errorf("ParseSettings(%q, %q) = %s, %v; want %s", name, body, got, err, w)
			}
		}
	}
}

func TestParseSettingsValues(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"server-tasks", `{"catalog_import":"02:30","language_report":"6h","compliance_summary":"23:00"}`,
			`{"catalog_import":"02:30","language_report":"6h","compliance_summary":"23:00"}`},
		{"server-tasks", `{"language_report":"1s"}`, `{"catalog_import":"off","language_report":"1s"}`},
		{"assessment", `{"scan_on_catalog_change":true}`, `{"scan_interval":"24h","scan_on_catalog_change":true}`},
		{"assessment", `{"scan_interval":"1m"}`, `{"scan_interval":"1m","scan_on_catalog_change":false}`},
		{"remediation", `{"restart":"force","max_concurrent":100,"retry_failed":0,"restart_grace":"0s"}`,
			`{"max_concurrent":100,"restart":"force","restart_grace":"0s","retry_failed":0}`},
		{"remediation", `{"restart":"suppress","retry_failed":20}`,
			`{"max_concurrent":1,"restart":"suppress","restart_grace":"15m","retry_failed":20}`},
		{"plugin-policy", `{"notify_user":false,"download_from":"vendor","max_postpone":"72h"}`,
			`{"notify_user":false,"allow_postpone":true,"max_postpone":"72h","download_from":"vendor"}`},
	}
	for _, tc := range cases {
		got, err := ParseSettings(tc.name, []byte(tc.body))
		if err != nil || string(got) != tc.want {
			t.Errorf("ParseSettings(%q, %s) = %s, %v; want %s", tc.name, tc.body, got, err, tc.want)
			continue
		}
		// The canonical body parses to itself.
		again, err := ParseSettings(tc.name, got)
		if err != nil || !bytes.Equal(again, got) {
			t.Errorf("canonical body %s reparsed to %s, %v", got, again, err)
		}
	}
}

func TestParseSettingsErrors(t *testing.T) {
	cases := []struct {
		name, body string
		want       string // substring of the message
	}{
		{"remediation", `{"max_concurrent":2,"reboot":true}`, `unknown field "reboot"`},
		{"assessment", `{"scan_interval":"24h","Scan_Everything":1}`, `unknown field "Scan_Everything"`},
		{"remediation", `{"max_concurrent":"2"}`, `cannot unmarshal string into Go struct field Remediation.max_concurrent of type int`},
		{"assessment", `{"scan_on_catalog_change":"yes"}`, `cannot unmarshal string`},
		{"plugin-policy", `{"max_postpone":24}`, `cannot unmarshal number`},
		{"remediation", `{"max_concurrent":1.5}`, `cannot unmarshal number 1.5`},
		{"remediation", `[]`, `cannot unmarshal array`},
		{"remediation", `"x"`, `cannot unmarshal string`},
		{"remediation", ``, `EOF`},
		{"remediation", `{"max_concurrent":2`, `unexpected EOF`},
		{"remediation", `{"restart":"reboot"}`, `settings "remediation": restart "reboot": want one of prompt, force, suppress: invalid`},
		{"remediation", `{"max_concurrent":0}`, `settings "remediation": max_concurrent must be from 1 to 100, not 0: invalid`},
		{"remediation", `{"max_concurrent":101}`, `max_concurrent must be from 1 to 100, not 101`},
		{"remediation", `{"retry_failed":-1}`, `retry_failed must be from 0 to 20, not -1`},
		{"remediation", `{"retry_failed":21}`, `retry_failed must be from 0 to 20, not 21`},
		{"remediation", `{"restart_grace":"-1m"}`, `restart_grace "-1m": want a duration of at least 0s`},
		{"remediation", `{"restart_grace":"soon"}`, `restart_grace "soon"`},
		{"assessment", `{"scan_interval":"30s"}`, `settings "assessment": scan_interval "30s": want a duration of at least 1m0s such as "24h": invalid`},
		{"plugin-policy", `{"download_from":"cdn"}`, `download_from "cdn": want one of site, vendor`},
		{"plugin-policy", `{"max_postpone":"forever"}`, `max_postpone "forever"`},
		{"server-tasks", `{"catalog_import":"25:00"}`, `settings "server-tasks": catalog_import: schedule "25:00": want "HH:MM" or an interval such as "15m": invalid`},
		{"server-tasks", `{"catalog_import":""}`, `catalog_import: schedule ""`},
		{"server-tasks", `{"catalog_import":"continuous"}`, `catalog_import: "continuous" is not allowed here`},
		{"server-tasks", `{"language_report":"25:00"}`, `language_report: schedule "25:00"`},
		{"server-tasks", `{"compliance_summary":"500ms"}`, `compliance_summary: schedule "500ms"`},
		{"remediation", `{} {}`, `settings "remediation": trailing data after the JSON object: invalid`},
		{"remediation", `{}x`, `trailing data after the JSON object`},
		{"assessment", `{"scan_interval":"1h"}]`, `trailing data after the JSON object`},
	}
	for _, tc := range cases {
		got, err := ParseSettings(tc.name, []byte(tc.body))
		if err == nil {
			t.Errorf("ParseSettings(%q, %s) = %s; want an error", tc.name, tc.body, got)
			continue
		}
		if got != nil {
			t.Errorf("ParseSettings(%q, %s) returned %s with the error", tc.name, tc.body, got)
		}
		if !errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("ParseSettings(%q, %s): %v is not (only) store.ErrInvalid", tc.name, tc.body, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSettings(%q, %s): error\n  %v\nwant it to contain\n  %s", tc.name, tc.body, err, tc.want)
		}
	}
}

// ParseSettings documents its body as "a JSON object"; a bare null is not one.
func TestParseSettingsNullBody(t *testing.T) {
	for _, name := range SettingsNames() {
		got, err := ParseSettings(name, []byte("null"))
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ParseSettings(%q, null) = %s, %v; want store.ErrInvalid", name, got, err)
		}
	}
}

func TestParseSettingsUnknownDocument(t *testing.T) {
	for _, name := range []string{"", "Remediation", "server_tasks", "nope"} {
		got, err := ParseSettings(name, []byte(`{}`))
		if got != nil || !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			t.Errorf("ParseSettings(%q) = %s, %v; want store.ErrNotFound", name, got, err)
			continue
		}
		want := `unknown settings document "` + name + `" (want one of assessment, plugin-policy, remediation, server-tasks): not found`
		if err.Error() != want {
			t.Errorf("error\n got %v\nwant %s", err, want)
		}
	}
}

func TestParseServerTasks(t *testing.T) {
	if ParseServerTasks(nil) != nil {
		t.Fatal("nil document")
	}
	d := &store.SettingDoc{Name: SettingsServerTasks, Body: json.RawMessage(`{"catalog_import":"02:00","language_report":"1h"}`)}
	got := ParseServerTasks(d)
	if got == nil || *got != (ServerTasks{CatalogImport: "02:00", LanguageReport: "1h"}) {
		t.Fatalf("ParseServerTasks = %+v", got)
	}
	if ParseServerTasks(&store.SettingDoc{Body: json.RawMessage(`[1]`)}) != nil {
		t.Fatal("a malformed body decodes")
	}
}

// fresh values of each document, for the fuzz target's checks.
var settingsTypes = map[string]func() any{
	SettingsServerTasks:  func() any { return new(ServerTasks) },
	SettingsAssessment:   func() any { return new(Assessment) },
	SettingsRemediation:  func() any { return new(Remediation) },
	SettingsPluginPolicy: func() any { return new(PluginPolicy) },
}

// FuzzParseSettings: ParseSettings never panics; it fails with store.ErrNotFound exactly for an
// unknown name and otherwise with store.ErrInvalid; what it accepts is canonical (a JSON object
// of the document's fields that parses to itself) and within the documented ranges.
func FuzzParseSettings(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		out, err := ParseSettings(name, body)
		fresh, known := settingsTypes[name]
		if err != nil {
			if out != nil {
				t.Fatalf("output %q with error %v", out, err)
			}
			if known != errors.Is(err, store.ErrInvalid) || known == errors.Is(err, store.ErrNotFound) {
				t.Fatalf("name %q (known %v): error %v", name, known, err)
			}
			return
		}
		if !known {
			t.Fatalf("unknown document %q accepted: %s", name, out)
		}
		v := fresh()
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("canonical body %s does not decode strictly: %v", out, err)
		}
		again, err := ParseSettings(name, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("canonical body %s reparsed to %s, %v", out, again, err)
		}
		switch x := v.(type) {
		case *Remediation:
			if x.MaxConcurrent < 1 || x.MaxConcurrent > 100 || x.RetryFailed < 0 || x.RetryFailed > 20 {
				t.Fatalf("out of range: %+v", x)
			}
			if x.Restart != "prompt" && x.Restart != "force" && x.Restart != "suppress" {
				t.Fatalf("restart %q", x.Restart)
			}
		case *PluginPolicy:
			if x.DownloadFrom != "site" && x.DownloadFrom != "vendor" {
				t.Fatalf("download_from %q", x.DownloadFrom)
			}
		case *ServerTasks:
			if x.CatalogImport == "" {
				t.Fatalf("catalog_import empty: %s", out)
			}
		}
	})
}
