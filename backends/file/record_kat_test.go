package file

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// katSlotHeader is the slot header of docs/FORMAT.md section 15's vector:
// slot 0 of a record with 4 KiB slots, id 00 01 .. 0f, sequence number 1,
// holding the 3-byte blob "kat".
func katSlotHeader() []byte {
	var id [16]byte
	for i := range id {
		id[i] = byte(i)
	}
	blob := []byte("kat")
	h := slotHeader{index: 0, slotSize: 4096, id: id, seq: 1, n: len(blob), sum: sum64(blob)}
	p := make([]byte, slotHeaderSize)
	h.marshal(p)
	return p
}

// TestRecordVector checks the known-answer slot header against
// docs/FORMAT.md, which must show it verbatim, and parses it back.
func TestRecordVector(t *testing.T) {
	p := katSlotHeader()
	want := hex.EncodeToString(p[:32]) + "\n" + hex.EncodeToString(p[32:])
	doc, err := os.ReadFile("../../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/FORMAT.md lacks the slot header vector:\n%s", want)
	}
	if h, ok := parseSlotHeader(p, 0, 4096); !ok || h.seq != 1 || h.n != 3 || h.sum != sum64([]byte("kat")) {
		t.Errorf("the vector does not parse back: %+v %v", h, ok)
	}
	if got := recVersionOf(&[16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 1); got != "1@000102030405060708090a0b0c0d0e0f" {
		t.Errorf("version %q", got)
	}
	// Every single-bit flip of the header is refused.
	for bit := range 8 * slotHeaderSize {
		q := append([]byte(nil), p...)
		q[bit/8] ^= 1 << (bit % 8)
		if _, ok := parseSlotHeader(q, 0, 4096); ok {
			t.Fatalf("bit %d flipped: the header still parses", bit)
		}
	}
	t.Logf("\n%s", want)
}
