package main

import (
	"context"
	"errors"
	"io"
)

// runTest implements "criimage test".
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
