// Package depcheck holds the test that makes docs/design.md's import table executable: every
// package of the module has a row, and its non-test code imports only the packages of ours that
// its row names. (The package has no code of its own; like go-containerregistry's
// depcheck_test.go, the rules are a test.)
package depcheck
