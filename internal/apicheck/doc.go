// Package apicheck tests the module's public API as a program outside the
// module sees it:
//
//   - TestExamplesOutsideModule copies every test file of the public
//     packages that holds an Example into a temporary module that requires this one through a
//     replace directive, and type-checks and vets them there, so that an
//     Example that imports an internal package, or uses a helper only the
//     module's own tests have, fails.
//   - TestMethodsInGoDoc checks that the methods users call on the keychain
//     types are declared on them, with doc comments, so that `go doc`
//     lists them (go doc hides methods promoted from an embedded type of
//     another package).
//
// The package has no API; its tests are the checks:
//
//	go test ./internal/apicheck
//
// They need no network: the temporary module resolves its dependencies
// from the local module cache only (GOPROXY=off, GOFLAGS=-mod=mod, this
// module's go.sum), so the cache must hold this module's dependencies,
// which it does once `go build ./...` and `go vet ./...` have run here. A
// dependency missing from the cache shows up as a "module lookup disabled
// by GOPROXY=off" error in the test's output.
package apicheck
