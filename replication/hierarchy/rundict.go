package hierarchy

// The run dictionary: a zstd raw-content dictionary both sides know, for the frames written per
// child (the header and the sections that are not shared). A small run is mostly its header's
// and its records' field names, which a frame of a few hundred bytes cannot compress against
// anything but a dictionary: with it, a no-op run is ~130 B instead of ~265 B and a
// differential run of four updates ~545 B instead of ~785 B (the Mozilla catalog, `ko`).
//
// A child asks for it in its pull (RevisionParam); a child that does not gets frames without
// it, as before. The dictionary holds only the protocol's vocabulary (field names and enum
// values), nothing of any catalog's content. Its bytes are part of the protocol: they are
// never changed; a better dictionary gets a new id and a new revision.

import (
	"github.com/klauspost/compress/zstd"
)

// runDictID identifies runDict in a frame's header ("pt" and 1).
const runDictID = 0x70740001

// runDict is the run dictionary, id runDictID. Frozen: see above. The most frequent content
// (a run header) is last, where matches are cheapest.
const runDict = `{"policies":[{"id":"","name":"","description":"","folder":"","bulletins":[],"updates":[{"id":"","bulletin":"","language":"","enabled":true}],"enabled":true,"run":"agent-default","override_maintenance_windows":false,"allow_immediate_restart":false,"revision":0,"created_at":"","updated_at":"","origin":"parent","parent_index":0}],"policy_keep":[],"delete_policies":[],"setting_docs":[{"name":"","body":{},"updated_at":"","origin":"parent","parent_index":0}],"delete_setting_docs":[],"replica":true}
{"bulletins":[{"id":"","vendor":"","title":"","severity":"","released":"","revised":"","description":"","cves":["CVE-"],"update_ids":[],"update_tags":[],"feed":"","hash":"","custom_severity":"","disabled":true,"create_index":0,"modify_index":0}],"delete_bulletins":[],"delete_updates":[],"replica":true}
{"updates":[{"id":"","title":"","language":"","file_name":"","url":"https://","size":0,"sha256":"","command_line":"","restart_required":true,"supersedes":[],"feed":"","hash":"","superseded":true,"create_index":0,"modify_index":0}],"replica":true}
{"run_id":"","mode":"complete","trigger":"first","from":0,"to":0,"ranges":[],"digest":"","records":0,"deletes":0,"chunks":0,"first_chunk":0,"sample_percent":5,"scopes":["catalog","policies","settings"],"policies":{"mode":"differential","trigger":"continuous","from":0,"to":0,"advance":true,"ranges":[],"records":0,"keep":0,"digest":""},"settings":{"trigger":"schedule","to":0,"records":0,"digest":""},"root_version":0,"cascade":{"id":"now-","scope":"all","mode":"differential"}}
{"run_id":"","mode":"differential","trigger":"replicate-now","from":0,"to":0,"ranges":[""],"digest":"","records":0,"deletes":0,"chunks":0,"first_chunk":0,"sample_percent":5,"scopes":["catalog"],"root_version":0,"cascade":{"id":"now-","scope":"catalog","mode":"differential"}}
`

// RunDecoderDict registers the run dictionary with a run's decoder (a child's). A frame
// without it decodes as before, so a child may always register it.
func RunDecoderDict() zstd.DOption { return zstd.WithDecoderDictRaw(runDictID, runDictBytes) }

// runDictBytes is runDict as the zstd options take it, converted once.
var runDictBytes = []byte(runDict)

// dictEncoders are the run encoders with the run dictionary.
var dictEncoders = runEncoderPool(zstd.WithEncoderDictRaw(runDictID, runDictBytes))
