// Package tpm seals a vault's key-encryption key to a TPM2, as a TPM key
// slot (vault.TPMSlot) beside passphrase and keychain slots: a headless
// server opens its vault at boot with nobody to type a passphrase, and
// keeps a recovery passphrase for the day the TPM is replaced or cleared.
// It implements vault.KEKSealer with github.com/google/go-tpm; only the
// programs that import this package pay for that dependency.
//
// Seal creates the storage primary key from the TCG's fixed ECC P-256
// SRK template in the owner hierarchy (the same key on every call, as
// long as the TPM's owner seed is unchanged; nothing is made persistent
// in the TPM), and under it a sealed data object holding the 32-byte key.
// With WithPCRs the object opens only while the chosen SHA-256 PCRs hold
// the values they held at Seal (a PolicyPCR policy); without, any process
// that can talk to the TPM opens it. The key crosses to and from the TPM
// inside a session salted to the primary key with AES-128-CFB parameter
// encryption, so it is never on the bus or the socket in plaintext. What
// the vault header stores is the object's public and private areas
// (encrypted by the TPM under the primary key), which reveal nothing
// without that TPM.
//
// What a TPM slot protects against: a copy of the vault folder (a backup,
// a stolen disk, another machine) does not open without this machine's
// TPM; with PCRs, not after booting another system either. What it does
// not protect against: root, or any user allowed to open the TPM device,
// on this machine while it runs in the sealed state can unseal the key.
//
// The device is /dev/tpmrm0 by default (the kernel's resource manager), or
// a Unix socket of a software TPM such as swtpm
// ("swtpm socket --tpm2 --server type=unixio,path=..."). A TPM that is
// missing or does not answer gives an error matching ErrUnavailable, at
// once for a missing device.
//
// # Windows
//
// On Windows the TPM is reached through TPM Base Services (tbs.dll), with
// the device WindowsDevice ("tbs") or DefaultDevice; any other device
// fails with ErrUnavailable, as does a machine without a TPM 2.0. The
// commands sent are the same as on Linux, but this module's tests run
// against swtpm on Linux only: the Windows transport is compiled
// (GOOS=windows go build) and not tested here.
package tpm

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/sessionvault/sessionvault/internal/secmem"
	"github.com/sessionvault/sessionvault/vault"
)

// DefaultDevice is the TPM device used when New is given "": the Linux
// kernel's TPM resource manager. On Windows it means WindowsDevice.
const DefaultDevice = "/dev/tpmrm0"

// WindowsDevice is the device that means, on Windows, the TPM behind TPM
// Base Services (TBS, reached through go-tpm's windowstpm transport).
// Elsewhere it is an ordinary relative path.
const WindowsDevice = "tbs"

// Sealer seals and unseals keys with one TPM2. It implements
// vault.KEKSealer and is safe for concurrent use (it sends one command
// sequence at a time). The zero value is not usable: call New.
type Sealer struct {
	device string
	pcrs   []int
	mu     sync.Mutex
}

// Option configures New.
//
// A nil Option is ignored.
type Option func(*Sealer)

// WithPCRs binds what Seal seals to the current values of the given PCRs
// of the TPM's SHA-256 bank (0 to 23; for example 7, the Secure Boot
// state): Unseal then works only while they hold the same values, and
// fails with ErrPCRMismatch otherwise. Unseal reads the PCR list from the
// sealed bytes, so it needs no option.
func WithPCRs(pcrs ...int) Option {
	return func(s *Sealer) { s.pcrs = append([]int(nil), pcrs...) }
}

// New returns a Sealer for the TPM at device: a character device such as
// /dev/tpmrm0 (DefaultDevice, used when device is ""), or the Unix socket
// of a software TPM. It does not open the device: Seal and Unseal do,
// each time, so a TPM that comes up after New is still found.
func New(device string, opts ...Option) (*Sealer, error) {
	if device == "" {
		device = DefaultDevice
	}
	s := &Sealer{device: device}
	for _, o := range opts {
		if o != nil { // a nil Option is ignored
			o(s)
		}
	}
	if len(s.pcrs) > maxSelectedPCRs {
		return nil, fmt.Errorf("tpm: %d PCRs given, the most is %d", len(s.pcrs), maxSelectedPCRs)
	}
	seen := map[int]bool{}
	for _, p := range s.pcrs {
		if p < 0 || p >= maxPCRs {
			return nil, fmt.Errorf("tpm: PCR %d: want 0 to %d", p, maxPCRs-1)
		}
		if seen[p] {
			return nil, fmt.Errorf("tpm: PCR %d given twice", p)
		}
		seen[p] = true
	}
	sort.Ints(s.pcrs)
	return s, nil
}

// Device returns the TPM device path the Sealer uses.
func (s *Sealer) Device() string { return s.device }

var _ vault.KEKSealer = (*Sealer)(nil)

// Seal seals kek to the TPM (bound to the PCRs of WithPCRs, if any) and
// returns the sealed bytes for the vault header. Before returning, it
// unseals them once and compares, so a slot is never written that this
// TPM cannot open.
func (s *Sealer) Seal(ctx context.Context, kek []byte) ([]byte, error) {
	if len(kek) == 0 || len(kek) > maxSecretSize {
		return nil, fmt.Errorf("tpm: seal: key of %d bytes, want 1 to %d", len(kek), maxSecretSize)
	}
	// The command sequence may outlive this call (do returns at the
	// deadline; see there): it works on its own copy of kek, wiped when it
	// ends, never on the caller's buffer, which the caller may free.
	own := make([]byte, len(kek))
	copy(own, kek)
	var out result
	err := s.do(ctx, "seal", func(t transport.TPM) error {
		defer secmem.Wipe(own)
		kek := own
		p, err := createPrimary(t)
		if err != nil {
			return err
		}
		defer flush(t, p.handle)
		sel := pcrSelection(s.pcrs)
		var policy []byte
		if len(s.pcrs) > 0 {
			if policy, err = pcrPolicy(t, sel); err != nil {
				return err
			}
		}
		rsp, err := tpm2.Create{
			ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: p.session(tpm2.AESEncryption(128, tpm2.EncryptIn))},
			InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
				Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: kek}),
			}},
			InPublic: tpm2.New2B(sealedTemplate(policy)),
		}.Execute(t)
		if err != nil {
			return &Error{Op: "seal", Step: "create the sealed object", Err: err}
		}
		b := sealedKey{pcrs: s.pcrs, public: tpm2.Marshal(rsp.OutPublic), private: tpm2.Marshal(rsp.OutPrivate)}
		got, err := unseal(t, p, &b)
		if err != nil {
			return err
		}
		same := subtle.ConstantTimeCompare(got, kek) == 1
		secmem.Wipe(got)
		if !same {
			return &Error{Op: "seal", Step: "check", Err: errors.New("the TPM unsealed another key than it sealed")}
		}
		out.set(b.encode())
		return nil
	})
	sealed := out.take()
	if err != nil {
		return nil, err
	}
	return sealed, nil
}

// Unseal returns the key sealed in sealed (made by Seal with this TPM),
// which the caller wipes. Errors: ErrUnavailable (no TPM, or it did not
// answer), ErrNotThisTPM (sealed by another TPM, or before its owner
// hierarchy was cleared), ErrPCRMismatch (the PCRs changed since Seal),
// ErrMalformed (the bytes are not a sealed key). ErrNotThisTPM and
// ErrPCRMismatch also match vault.ErrWrongKey, ErrMalformed matches
// vault.ErrCorrupt.
func (s *Sealer) Unseal(ctx context.Context, sealed []byte) ([]byte, error) {
	b, err := parseSealed(sealed)
	if err != nil {
		return nil, err
	}
	var out result
	err = s.do(ctx, "unseal", func(t transport.TPM) error {
		p, err := createPrimary(t)
		if err != nil {
			return err
		}
		defer flush(t, p.handle)
		k, err := unseal(t, p, b)
		out.set(k)
		return err
	})
	k := out.take()
	if err != nil {
		secmem.Wipe(k)
		return nil, err
	}
	return k, nil
}

// result hands bytes from a command sequence to its caller. The sequence
// may end after the caller gave up (do returns at the deadline): take
// marks the result abandoned, and a later set wipes what it was given,
// so an unsealed key that arrives too late is never left in memory.
type result struct {
	mu        sync.Mutex
	b         []byte
	abandoned bool
}

func (r *result) set(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.abandoned {
		secmem.Wipe(b)
		return
	}
	r.b = b
}

func (r *result) take() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.abandoned = true
	b := r.b
	r.b = nil
	return b
}

// Probe checks that the TPM answers (one TPM2_GetRandom), within ctx.
func (s *Sealer) Probe(ctx context.Context) error {
	return s.do(ctx, "probe", func(t transport.TPM) error {
		if _, err := (tpm2.GetRandom{BytesRequested: 8}).Execute(t); err != nil {
			return &Error{Op: "probe", Step: "get random", Err: err}
		}
		return nil
	})
}

// do opens the device, runs fn on it and closes it, bounded by ctx (and
// by opTimeout when ctx has no deadline). The TPM transports take no
// context: on expiry do returns at once and the command sequence ends in
// the background, its connection closed when it does.
func (s *Sealer) do(ctx context.Context, op string, fn func(transport.TPM) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opTimeout)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		t, err := open(s.device)
		if err != nil {
			done <- err
			return
		}
		defer t.Close()
		done <- fn(t)
	}()
	select {
	case err := <-done:
		return classify(op, s.device, err)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &Error{Op: op, Device: s.device, Step: "wait for the TPM", Err: fmt.Errorf("%w: no answer: %w", ErrUnavailable, ctx.Err())}
		}
		return ctx.Err()
	}
}

// primary is the loaded storage primary key.
type primary struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	public tpm2.TPMTPublic
}

// session returns a use-once HMAC session salted to the primary key with
// enc, its parameter encryption (AES-128-CFB of the first parameter).
func (p *primary) session(enc tpm2.AuthOption) tpm2.Session {
	return tpm2.HMAC(tpm2.TPMAlgSHA256, 16, enc, tpm2.Salted(p.handle, p.public))
}

func createPrimary(t transport.TPM) (*primary, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(t)
	if err != nil {
		return nil, &Error{Op: "create primary", Step: "create the storage key (owner hierarchy, ECC P-256 SRK template)", Err: err}
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		flush(t, rsp.ObjectHandle)
		return nil, &Error{Op: "create primary", Step: "read its public area", Err: err}
	}
	return &primary{handle: rsp.ObjectHandle, name: rsp.Name, public: *pub}, nil
}

// unseal loads the sealed object b under p and unseals it.
func unseal(t transport.TPM, p *primary, b *sealedKey) ([]byte, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](b.public)
	if err != nil {
		return nil, malformed("public area: %v", err)
	}
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](b.private)
	if err != nil {
		return nil, malformed("private area: %v", err)
	}
	if err := checkPublic(pub, len(b.pcrs) > 0); err != nil {
		return nil, err
	}
	ld, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    *priv,
		InPublic:     *pub,
	}.Execute(t)
	if err != nil {
		return nil, &Error{Op: "unseal", Step: "load the sealed object", Err: fmt.Errorf("%w: %w", ErrNotThisTPM, err)}
	}
	defer flush(t, ld.ObjectHandle)
	var auth tpm2.Session
	if len(b.pcrs) == 0 {
		auth = p.session(tpm2.AESEncryption(128, tpm2.EncryptOut))
	} else {
		sel := pcrSelection(b.pcrs)
		auth = tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(t transport.TPM, handle tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
			_, err := tpm2.PolicyPCR{PolicySession: handle, Pcrs: sel}.Execute(t)
			return err
		}, tpm2.AESEncryption(128, tpm2.EncryptOut), tpm2.Salted(p.handle, p.public))
	}
	rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: auth}}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCPolicyFail) {
			err = fmt.Errorf("%w: %w", ErrPCRMismatch, err)
		}
		return nil, &Error{Op: "unseal", Step: "unseal", Err: err}
	}
	out := append([]byte(nil), rsp.OutData.Buffer...)
	secmem.Wipe(rsp.OutData.Buffer)
	return out, nil
}

// sealedTemplate is the public area of a sealed data object: bound to
// this TPM and parent, no dictionary-attack lockout (it has no auth value
// to guess), opened by policy when policy is set, else by an empty auth.
func sealedTemplate(policy []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:     true,
			FixedParent:  true,
			UserWithAuth: policy == nil,
			NoDA:         true,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
		}),
	}
}

// checkPublic refuses a public area that is not a sealed data object of
// the shape Seal makes: the TPM would enforce its policy anyway, but a
// header must not be able to make Unseal load arbitrary objects.
func checkPublic(pub *tpm2.TPM2BPublic, withPCRs bool) error {
	c, err := pub.Contents()
	if err != nil {
		return malformed("public area: %v", err)
	}
	a := c.ObjectAttributes
	if c.Type != tpm2.TPMAlgKeyedHash || c.NameAlg != tpm2.TPMAlgSHA256 || !a.FixedTPM || !a.FixedParent || a.SensitiveDataOrigin || a.SignEncrypt || a.Decrypt {
		return malformed("public area is not a sealed data object")
	}
	if withPCRs == a.UserWithAuth || withPCRs != (len(c.AuthPolicy.Buffer) == sha256.Size) {
		return malformed("public area's authorization does not match its PCR list")
	}
	return nil
}

// pcrSelection selects pcrs in the SHA-256 bank.
func pcrSelection(pcrs []int) tpm2.TPMLPCRSelection {
	bits := make([]byte, pcrSelectSize)
	for _, p := range pcrs {
		bits[p/8] |= 1 << (p % 8)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: bits}}}
}

// pcrPolicy reads the selected PCRs and returns the digest of the policy
// PolicyPCR(their current values).
func pcrPolicy(t transport.TPM, sel tpm2.TPMLPCRSelection) ([]byte, error) {
	rsp, err := tpm2.PCRRead{PCRSelectionIn: sel}.Execute(t)
	if err != nil {
		return nil, &Error{Op: "seal", Step: "read the PCRs", Err: err}
	}
	want := sel.PCRSelections[0].PCRSelect
	out := rsp.PCRSelectionOut.PCRSelections
	if len(out) != 1 || out[0].Hash != tpm2.TPMAlgSHA256 || subtle.ConstantTimeCompare(out[0].PCRSelect, want) != 1 {
		return nil, &Error{Op: "seal", Step: "read the PCRs", Err: errors.New("the TPM has no SHA-256 bank with all the PCRs asked for")}
	}
	h := sha256.New()
	for _, d := range rsp.PCRValues.Digests {
		h.Write(d.Buffer)
	}
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if err := (tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)}, Pcrs: sel}).Update(calc); err != nil {
		return nil, err
	}
	return calc.Hash().Digest, nil
}

func flush(t transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(t)
}
