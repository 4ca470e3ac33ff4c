package kdf

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDeriveDefault measures one argon2id derivation at Default
// (t=3, 64 MiB, p=4): the cost of unlocking a vault with a passphrase.
func BenchmarkDeriveDefault(b *testing.B) {
	salt := NewSalt()
	pass := []byte("correct horse battery staple")
	for b.Loop() {
		k, err := Derive(pass, salt, Default)
		if err != nil {
			b.Fatal(err)
		}
		k.Destroy()
	}
}

// BenchmarkCalibrate calibrates for each target, then times derivations
// with the chosen parameters. It reports the parameters (t, MiB, p) and
// the measured time as a ratio of the target ("x-target").
//
//	go test -run '^$' -bench Calibrate -benchtime 5x ./kdf
func BenchmarkCalibrate(b *testing.B) {
	for _, target := range []time.Duration{100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		b.Run(fmt.Sprint("target=", target), func(b *testing.B) {
			p, err := Calibrate(target)
			if err != nil {
				b.Fatal(err)
			}
			salt := NewSalt()
			b.ResetTimer()
			for b.Loop() {
				k, err := Derive([]byte("pw"), salt, p)
				if err != nil {
					b.Fatal(err)
				}
				k.Destroy()
			}
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(p.Time), "t")
			b.ReportMetric(float64(p.MemoryKiB)/1024, "MiB")
			b.ReportMetric(float64(p.Threads), "p")
			b.ReportMetric(float64(per)/float64(target), "x-target")
		})
	}
}
