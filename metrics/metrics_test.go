package metrics

import (
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestInstrument: a request is counted under its route pattern, method and the status code the
// handler wrote; a method outside the known ones is "other".
func TestInstrument(t *testing.T) {
	m, err := New(Config{}) // nothing is scraped here: the collector needs no node
	if err != nil {
		t.Fatal(err)
	}
	h := m.Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/children/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		w.Write([]byte("{}"))
	}), func(*http.Request) string { return "/v1/children/{name}" })
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/children/north"}, {"GET", "/v1/children/south"}, {"GET", "/v1/children/missing"}, {"BREW", "/v1/children/north"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
	}
	for _, c := range []struct {
		method, code string
		want         float64
	}{{"GET", "200", 2}, {"GET", "404", 1}, {"other", "200", 1}} {
		var d dto.Metric
		if err := m.requests.WithLabelValues("/v1/children/{name}", c.method, c.code).Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetCounter().GetValue(); got != c.want {
			t.Errorf("requests{route=/v1/children/{name}, method=%s, code=%s} = %v, want %v", c.method, c.code, got, c.want)
		}
	}
	var d dto.Metric
	if err := m.duration.WithLabelValues("/v1/children/{name}", "GET").(interface{ Write(*dto.Metric) error }).Write(&d); err != nil {
		t.Fatal(err)
	}
	if got := d.GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("duration histogram of GET /v1/children/{name} has %d samples, want 3", got)
	}
}
