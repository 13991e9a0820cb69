package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"
)

// fillDistinct sets every field of v (a pointer to a struct) to a value no other field has:
// a field the row codec forgets comes back zero and fails the round trip below.
func fillDistinct(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillDistinct(t, v.Elem(), n)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			*n++
			v.Set(reflect.ValueOf(time.Unix(int64(*n), 0).UTC()))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fillDistinct(t, v.Field(i), n)
		}
	case reflect.String:
		*n++
		v.SetString(fmt.Sprintf("v%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		*n++
		v.SetInt(int64(*n) * 1000003)
	case reflect.Uint64:
		*n++
		v.SetUint(uint64(*n) * 1000033)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage
			*n++
			v.SetBytes([]byte(fmt.Sprintf(`{"n":%d}`, *n)))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fillDistinct(t, v.Index(i), n)
		}
	default:
		t.Fatalf("fillDistinct: no value for a %s field: teach the test (and check the row codec)", v.Type())
	}
}

func fullBatch(t *testing.T) *CatalogBatch {
	var b CatalogBatch
	n := 0
	fillDistinct(t, reflect.ValueOf(&b), &n)
	return &b
}

// roundTrip encodes b as EncodeBatch does and decodes it back.
func roundTrip(t *testing.T, b *CatalogBatch) *CatalogBatch {
	t.Helper()
	raw, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBatchRowCodecRoundTripsEveryField(t *testing.T) {
	want := fullBatch(t)
	got := roundTrip(t, want)
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Fatalf("round trip changed the batch:\n got %s\nwant %s", gj, wj)
	}
}

func TestBatchRowCodecKeepsNilAndEmptyLists(t *testing.T) {
	want := &CatalogBatch{
		Bulletins: []*Bulletin{
			{BulletinContent: BulletinContent{ID: "B1", UpdateIDs: []string{}}},
			{BulletinContent: BulletinContent{ID: "B2", CVEs: []string{""}, UpdateIDs: nil}, UpdateTags: []string{"", "fr"}},
		},
		Updates:       []*Update{{UpdateContent: UpdateContent{ID: "U1", Size: -1, Supersedes: []string{}}}},
		DeleteUpdates: []string{},
	}
	got := roundTrip(t, want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// The rows marshal as the ones written: a nil list and an empty one differ in JSON.
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Fatalf("JSON differs:\n got %s\nwant %s", gj, wj)
	}
}

// Raft logs and snapshots of earlier releases hold batches as zstd over JSON.
func TestDecodeBatchReadsJSONBatches(t *testing.T) {
	want := fullBatch(t)
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatch(batchEncoder.EncodeAll(js, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("a JSON batch did not decode to the batch written")
	}
}

func TestBatchRowCodecRejectsCorruptBatches(t *testing.T) {
	good, err := appendBatchRows(nil, fullBatch(t))
	if err != nil {
		t.Fatal(err)
	}
	// Every truncation fails cleanly.
	for n := 0; n < len(good); n++ {
		if _, err := decodeBatchRows(good[:n]); !errors.Is(err, errBatchCodec) {
			t.Fatalf("truncated to %d of %d bytes: err = %v, want errBatchCodec", n, len(good), err)
		}
	}
	cases := map[string][]byte{
		"trailing bytes":      append(append([]byte(nil), good...), 0),
		"huge bulletin count": {batchCodecRows, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":         {batchCodecRows, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad boolean":         append([]byte{batchCodecRows, 0, 1}, append(make([]byte, 13), 7, 0, 0)...),
		"other codec":         {'{', '}'},
	}
	for name, in := range cases {
		if _, err := decodeBatchRows(in); !errors.Is(err, errBatchCodec) {
			t.Errorf("%s: err = %v, want errBatchCodec", name, err)
		}
	}
}

// The short strings of a batch are shared, not one allocation per row.
func TestBatchRowCodecSharesRepeatedStrings(t *testing.T) {
	var b CatalogBatch
	for i := 0; i < 3; i++ {
		b.Updates = append(b.Updates, &Update{UpdateContent: UpdateContent{ID: fmt.Sprint("U", i), Language: "fr"}, Feed: "mozilla"})
	}
	buf, err := appendBatchRows(nil, &b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatchRows(buf)
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(got.Updates[0].Feed) != unsafe.StringData(got.Updates[2].Feed) {
		t.Fatal("each row has its own copy of the feed name")
	}
}

func FuzzDecodeBatchRows(f *testing.F) {
	small := &CatalogBatch{
		Tombstones: true,
		Bulletins:  []*Bulletin{{BulletinContent: BulletinContent{ID: "B1", UpdateIDs: []string{"U1"}}, UpdateTags: []string{"fr"}}},
		Updates:    []*Update{{UpdateContent: UpdateContent{ID: "U1", Language: "fr", Size: 10}}},
		PolicyKeep: []string{"p"},
	}
	for _, b := range []*CatalogBatch{small, {}, {DeleteBulletins: []string{"B9"}}} {
		buf, err := appendBatchRows(nil, b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := decodeBatchRows(in)
		if err != nil {
			if !errors.Is(err, errBatchCodec) {
				t.Fatalf("error %v does not wrap errBatchCodec", err)
			}
			return
		}
		// What decodes encodes back to a batch that decodes the same.
		again, err := appendBatchRows(nil, b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := decodeBatchRows(again)
		if err != nil || !reflect.DeepEqual(b, b2) {
			t.Fatalf("re-encoded batch does not decode the same: %v", err)
		}
	})
}
