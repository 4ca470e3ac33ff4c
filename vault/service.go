package vault

import (
	"fmt"

	"github.com/sessionvault/sessionvault/backends"
)

// ServiceNamer is implemented by a backends.KeyStore that keeps its keys
// under a service name, as an OS keychain does. Create and
// AddKeychainSlot record that name in the new keychain slot (header
// version 3, docs/FORMAT.md section 3.4), and SlotInfo.Service reports
// it, so that a program can open the vault later with a key store for
// the same service without being told which one. A key store that does
// not implement it (or returns "") makes a slot that records no name,
// readable by every version 1 reader.
//
// The name is authenticated like the rest of the slot: a header whose
// recorded name was changed does not open (ErrCorrupt once a slot
// opens, ErrWrongKey when the key store asked under the changed name
// has no matching key). It is not secret.
type ServiceNamer interface {
	// Service returns the service name: 1 to MaxKeychainServiceSize
	// bytes of A-Z a-z 0-9 - _ . @ +, or "" for none.
	Service() string
}

// keyStoreService returns the service name ks records in a new keychain
// slot, checked, or "" when it names none.
func keyStoreService(ks backends.KeyStore) (string, error) {
	n, ok := ks.(ServiceNamer)
	if !ok {
		return "", nil
	}
	s := n.Service()
	if s == "" {
		return "", nil
	}
	if err := validService(s); err != nil {
		return "", fmt.Errorf("vault: key store service name %q: %s", s, err)
	}
	return s, nil
}

// validService checks a recorded service name: the length bound and the
// name characters of backends.ValidateName (a leading . or - is
// allowed, as package keychain allows it).
func validService(s string) error {
	if len(s) == 0 || len(s) > MaxKeychainServiceSize {
		return fmt.Errorf("%d bytes, want 1 to %d", len(s), MaxKeychainServiceSize)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '@' || c == '+') {
			return fmt.Errorf("byte %#02x at %d, want A-Z a-z 0-9 - _ . @ +", c, i)
		}
	}
	return nil
}

// readService reads a keychain slot's length-prefixed service name.
func readService(r *reader, field string) (string, error) {
	n := int(r.u8(field + " length"))
	if r.err != nil {
		return "", r.err
	}
	p := r.take(n, field)
	if r.err != nil {
		return "", r.err
	}
	if err := validService(string(p)); err != nil {
		return "", corruptHeader(field, err.Error())
	}
	return string(p), nil
}

// wireKind is the kind byte stored for s.
func (s *slot) wireKind() byte {
	if s.kind == KeychainSlot && s.service != "" {
		return kindKeychainService
	}
	return byte(s.kind)
}
