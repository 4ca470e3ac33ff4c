package servicetest

import "testing"

func TestRequired(t *testing.T) {
	for _, c := range []struct {
		ci, require string
		want        bool
	}{
		{"", "", false},
		{"true", "", true},
		{"1", "", false},
		{"", "1", true},
		{"", "0", false},
	} {
		t.Setenv("CI", c.ci)
		t.Setenv("SESSIONVAULT_REQUIRE_SERVICES", c.require)
		if got := Required(); got != c.want {
			t.Errorf("CI=%q SESSIONVAULT_REQUIRE_SERVICES=%q: Required() = %v, want %v", c.ci, c.require, got, c.want)
		}
	}
}

func TestRequireReturnsWhenSet(t *testing.T) {
	t.Setenv("SERVICETEST_PROBE", "1")
	t.Setenv("CI", "true")
	Require(t, "SERVICETEST_PROBE", "probe", "nothing") // must neither fail nor skip
}
