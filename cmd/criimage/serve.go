package main

import (
	"context"
	"errors"
	"io"
)

// runServe implements "criimage serve".
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
