package hierarchy

import (
	"encoding/json"
	"strings"
	"testing"

	"patchtree/replication/compliance"
)

// FuzzSubtreeReport feeds arbitrary subtree lists to a parent in a relay's summary report: it
// never panics; a refused report stores nothing (neither the relay's own summary nor any path);
// an accepted one stores only paths below the relay, each with a summary that decodes to its
// digest, and no more paths than the list names.
func FuzzSubtreeReport(f *testing.F) {
	sum := siteSummary("emea-de", 2)
	raw, _ := json.Marshal(sum)
	good, _ := json.Marshal([]ForwardedSummary{{Path: "emea/emea-de", Seq: 1, Digest: sum.Digest(), Interval: "1h0m0s", Summary: raw}})
	f.Add(good)
	f.Add([]byte(`[{"path":"emea/emea-de","seq":3,"digest":"x","interval":"1h"}]`))
	f.Add([]byte(`[{"path":"emea/a/b","seq":1,"digest":"","interval":"0s","summary":{"site":"b","computers":1,"cells":[0,0,0,0]}}]`))
	f.Add([]byte(`[{"path":"emea","seq":1},{"path":"emea/x","seq":1,"summary":null}]`))
	f.Add([]byte(`[{"path":"emea/x","seq":18446744073709551615,"interval":"-1h","stale":true}]`))
	f.Fuzz(func(t *testing.T, list []byte) {
		var sub []ForwardedSummary
		if json.Unmarshal(list, &sub) != nil {
			return
		}
		p, site := tierParent(t)
		rep := report(t, 1, goodSummary())
		rep.Subtree = sub
		ans, err := p.ReceiveSummary("emea", rep, 1, 1)
		rows, rerr := site.s.SubtreeSummaries(nil, "")
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if cs, _ := site.s.ChildSummary(nil, "emea"); cs != nil || len(rows) != 0 {
				t.Fatalf("refused (%v), yet stored %+v and %d paths", err, cs, len(rows))
			}
			return
		}
		if !ans.Accepted || len(rows) > len(sub) {
			t.Fatalf("answer %+v with %d paths stored for a list of %d", ans, len(rows), len(sub))
		}
		for _, r := range rows {
			if !strings.HasPrefix(r.Path, "emea/") || r.Child != "emea" {
				t.Fatalf("stored %q through %q", r.Path, r.Child)
			}
			s, err := compliance.DecodeStored(r.Summary)
			if err != nil || s.Digest() != r.Digest {
				t.Fatalf("stored summary of %s: %v", r.Path, err)
			}
		}
	})
}
