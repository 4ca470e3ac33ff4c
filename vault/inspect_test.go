package vault

import (
	"context"
	"testing"
)

func TestInspect(t *testing.T) {
	ctx := context.Background()
	ks := newKeyStore()
	s := newTestSealer()
	v, b := newVault(t, cheap(testPass, WithKeyStore(ks), WithTPM(s))...)
	want := v.Info()
	in, err := Inspect(ctx, b, WithInsecureKDFForTesting())
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != want.ID || in.FormatVersion != 2 || len(in.Slots) != 3 || in.UnlockedBy != (SlotID{}) {
		t.Fatalf("inspect %+v, open %+v", in, want)
	}
	for i := range in.Slots {
		g, w := in.Slots[i], want.Slots[i]
		if g.ID != w.ID || g.Kind != w.Kind || g.KDF != w.KDF || g.Account != w.Account || string(g.Sealed) != string(w.Sealed) {
			t.Fatalf("slot %d: %+v, want %+v", i, g, w)
		}
	}
	// The default policy refuses the test vault's cheap passphrase slot,
	// as Open would.
	_, err = Inspect(ctx, b)
	wantErr(t, err, ErrPolicy, "inspect under the default policy")
	empty, _ := newMemory()
	_, err = Inspect(ctx, empty)
	wantErr(t, err, ErrNotFound, "inspect an empty backend")
}
