//go:build !windows

package main

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sessionvault/sessionvault/internal/servicetest"
	"github.com/sessionvault/sessionvault/internal/swtpmtest"
)

// TestTPMScripts runs testdata/tpm: vaultctl against a real software
// TPM, one per script ($VAULTCTL_TPM_DEVICE is its socket), which the
// script can restart, wipe and extend a PCR of with the tpm command.
func TestTPMScripts(t *testing.T) {
	servicetest.Require(t, swtpmtest.Env, "software TPM (swtpm)", "scripts/with-swtpm")
	testscript.Run(t, testscript.Params{
		Dir: "testdata/tpm",
		Setup: func(env *testscript.Env) error {
			if err := setupScript(env); err != nil {
				return err
			}
			s, err := swtpmtest.New(filepath.Join(env.WorkDir, "tpm-state"))
			if err != nil {
				return err
			}
			env.Defer(s.Close)
			if err := s.Restart(); err != nil {
				return err
			}
			env.Setenv("VAULTCTL_TPM_DEVICE", s.Socket)
			env.Values[swtpmKey{}] = s
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":    cmdExits,
			"jsonpath": cmdJSONPath,
			"jsonlen":  cmdJSONLen,
			"jsonsub":  cmdJSONSub,
			"tpm":      cmdTPM,
		},
		Condition: scriptCondition,
	})
}

type swtpmKey struct{}

// cmdTPM acts on the script's software TPM:
//
//	tpm stop       the TPM goes away (its state stays)
//	tpm restart    it comes back with its state (a reboot)
//	tpm wipe       it comes back with new state (a TPM clear, a new board)
//	tpm extend N   PCR N of the SHA-256 bank is extended
func cmdTPM(ts *testscript.TestScript, neg bool, args []string) {
	s := ts.Value(swtpmKey{}).(*swtpmtest.TPM)
	if neg || len(args) == 0 {
		ts.Fatalf("usage: tpm stop|restart|wipe|extend N")
	}
	var err error
	switch args[0] {
	case "stop":
		s.Stop()
	case "restart":
		err = s.Restart()
	case "wipe":
		err = s.Wipe()
	case "extend":
		if len(args) != 2 {
			ts.Fatalf("usage: tpm extend N")
		}
		n, perr := strconv.Atoi(args[1])
		if perr != nil {
			ts.Fatalf("tpm extend: %v", perr)
		}
		err = s.ExtendPCR(n)
	default:
		ts.Fatalf("tpm: unknown action %q", args[0])
	}
	ts.Check(err)
}
