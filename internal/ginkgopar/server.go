// Copyright (c) 2013-2014 Onsi Fakhouri
//
// Permission is hereby granted, free of charge, to any person obtaining
// a copy of this software and associated documentation files (the
// "Software"), to deal in the Software without restriction, including
// without limitation the rights to use, copy, modify, merge, publish,
// distribute, sublicense, and/or sell copies of the Software, and to
// permit persons to whom the Software is furnished to do so, subject to
// the following conditions:
//
// The above copyright notice and this permission notice shall be
// included in all copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
// EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
// MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
// NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE
// LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION
// OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
// WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

// This file is ginkgo's parallel aggregation server, copied from github.com/onsi/ginkgo/v2
// v2.34.0, internal/parallel_support: http_server.go and server_handler.go, with the types they
// need from client_server.go (BeforeSuiteState, ParallelIndexCounter, the three protocol errors).
// The wire protocol (paths, JSON bodies, status codes) is unchanged: it is what ginkgo's own HTTP
// client (GINKGO_PARALLEL_PROTOCOL=HTTP) speaks in every worker. Changes, all outside the protocol:
//
//   - httpServer and ServerHandler are unexported (server, handler); the handler's methods lost the
//     net/rpc signature (Void arguments, the voidSender/voidReceiver package variables) since the
//     RPC server is not copied;
//   - the output destination is given to newServer instead of defaulting to os.Stdout, and
//     forwarded output is written under the handler's lock like everything the reporter writes
//     (the destination may be a plain buffer);
//   - newServer returns wrapped errors; Close shuts the HTTP server down and waits for its
//     handlers, so nothing writes to the destination after Close;
//   - result exposes the merged report to the launcher; GetOutputDestination/SetOutputDestination
//     are dropped.

package ginkgopar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// beforeSuiteState is what process 1's SynchronizedBeforeSuite hands the other processes.
type beforeSuiteState struct {
	Data  []byte
	State types.SpecState
}

// parallelIndexCounter is the next spec group to run.
type parallelIndexCounter struct {
	Index int
}

// The protocol's answers besides OK.
var (
	errGone   = errors.New("gone")
	errFailed = errors.New("failed")
	errEarly  = errors.New("early")
)

// server listens on 127.0.0.1 for the workers' ginkgo HTTP clients and forwards what they report to
// its handler.
type server struct {
	listener net.Listener
	handler  *handler
	http     *http.Server
}

// newServer listens on an automatically selected loopback port.
func newServer(parallelTotal int, reporter reporters.Reporter, output io.Writer) (*server, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("parallel server: %w", err)
	}
	return &server{
		listener: listener,
		handler:  newHandler(parallelTotal, reporter, output),
	}, nil
}

// Start serves in the background.
func (s *server) Start() {
	mux := http.NewServeMux()
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}

	// streaming endpoints
	mux.HandleFunc("/suite-will-begin", s.specSuiteWillBegin)
	mux.HandleFunc("/did-run", s.didRun)
	mux.HandleFunc("/suite-did-end", s.specSuiteDidEnd)
	mux.HandleFunc("/emit-output", s.emitOutput)
	mux.HandleFunc("/progress-report", s.emitProgressReport)

	// synchronization endpoints
	mux.HandleFunc("/report-before-suite-completed", s.handleReportBeforeSuiteCompleted)
	mux.HandleFunc("/report-before-suite-state", s.handleReportBeforeSuiteState)
	mux.HandleFunc("/before-suite-completed", s.handleBeforeSuiteCompleted)
	mux.HandleFunc("/before-suite-state", s.handleBeforeSuiteState)
	mux.HandleFunc("/have-nonprimary-procs-finished", s.handleHaveNonprimaryProcsFinished)
	mux.HandleFunc("/aggregated-nonprimary-procs-report", s.handleAggregatedNonprimaryProcsReport)
	mux.HandleFunc("/counter", s.handleCounter)
	mux.HandleFunc("/up", s.handleUp)
	mux.HandleFunc("/abort", s.handleAbort)

	go func() { _ = s.http.Serve(s.listener) }()
}

// Close stops the server and waits (a bounded time) for the requests it is handling.
func (s *server) Close() error {
	if s.http == nil {
		return s.listener.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("parallel server: %w", err)
	}
	return nil
}

// Address is the server's address for the workers' --ginkgo.parallel.host.
func (s *server) Address() string {
	return "http://" + s.listener.Addr().String()
}

// SuiteDone is closed once every process has reported the end of its suite.
func (s *server) SuiteDone() <-chan any {
	return s.handler.done
}

// RegisterAlive tells the server how to know that process proc is still running.
func (s *server) RegisterAlive(proc int, alive func() bool) {
	s.handler.registerAlive(proc, alive)
}

//
// Streaming Endpoints
//

func (s *server) decode(writer http.ResponseWriter, request *http.Request, object any) bool {
	defer request.Body.Close()
	if json.NewDecoder(request.Body).Decode(object) != nil {
		writer.WriteHeader(http.StatusBadRequest)
		return false
	}
	return true
}

func (s *server) handleError(err error, writer http.ResponseWriter) bool {
	if err == nil {
		return false
	}
	switch err {
	case errEarly:
		writer.WriteHeader(http.StatusTooEarly)
	case errGone:
		writer.WriteHeader(http.StatusGone)
	case errFailed:
		writer.WriteHeader(http.StatusFailedDependency)
	default:
		writer.WriteHeader(http.StatusInternalServerError)
	}
	return true
}

func (s *server) specSuiteWillBegin(writer http.ResponseWriter, request *http.Request) {
	var report types.Report
	if !s.decode(writer, request, &report) {
		return
	}
	s.handleError(s.handler.SpecSuiteWillBegin(report), writer)
}

func (s *server) didRun(writer http.ResponseWriter, request *http.Request) {
	var report types.SpecReport
	if !s.decode(writer, request, &report) {
		return
	}
	s.handleError(s.handler.DidRun(report), writer)
}

func (s *server) specSuiteDidEnd(writer http.ResponseWriter, request *http.Request) {
	var report types.Report
	if !s.decode(writer, request, &report) {
		return
	}
	s.handleError(s.handler.SpecSuiteDidEnd(report), writer)
}

func (s *server) emitOutput(writer http.ResponseWriter, request *http.Request) {
	output, err := io.ReadAll(request.Body)
	if err != nil {
		writer.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.handleError(s.handler.EmitOutput(output), writer)
}

func (s *server) emitProgressReport(writer http.ResponseWriter, request *http.Request) {
	var report types.ProgressReport
	if !s.decode(writer, request, &report) {
		return
	}
	s.handleError(s.handler.EmitProgressReport(report), writer)
}

func (s *server) handleReportBeforeSuiteCompleted(writer http.ResponseWriter, request *http.Request) {
	var state types.SpecState
	if !s.decode(writer, request, &state) {
		return
	}
	s.handleError(s.handler.ReportBeforeSuiteCompleted(state), writer)
}

func (s *server) handleReportBeforeSuiteState(writer http.ResponseWriter, _ *http.Request) {
	var state types.SpecState
	if s.handleError(s.handler.ReportBeforeSuiteState(&state), writer) {
		return
	}
	_ = json.NewEncoder(writer).Encode(state)
}

func (s *server) handleBeforeSuiteCompleted(writer http.ResponseWriter, request *http.Request) {
	var state beforeSuiteState
	if !s.decode(writer, request, &state) {
		return
	}
	s.handleError(s.handler.BeforeSuiteCompleted(state), writer)
}

func (s *server) handleBeforeSuiteState(writer http.ResponseWriter, _ *http.Request) {
	var state beforeSuiteState
	if s.handleError(s.handler.BeforeSuiteState(&state), writer) {
		return
	}
	_ = json.NewEncoder(writer).Encode(state)
}

func (s *server) handleHaveNonprimaryProcsFinished(writer http.ResponseWriter, _ *http.Request) {
	if s.handleError(s.handler.HaveNonprimaryProcsFinished(), writer) {
		return
	}
	writer.WriteHeader(http.StatusOK)
}

func (s *server) handleAggregatedNonprimaryProcsReport(writer http.ResponseWriter, _ *http.Request) {
	var aggregatedReport types.Report
	if s.handleError(s.handler.AggregatedNonprimaryProcsReport(&aggregatedReport), writer) {
		return
	}
	_ = json.NewEncoder(writer).Encode(aggregatedReport)
}

func (s *server) handleCounter(writer http.ResponseWriter, _ *http.Request) {
	var n int
	if s.handleError(s.handler.Counter(&n), writer) {
		return
	}
	_ = json.NewEncoder(writer).Encode(parallelIndexCounter{Index: n})
}

func (s *server) handleUp(writer http.ResponseWriter, _ *http.Request) {
	writer.WriteHeader(http.StatusOK)
}

func (s *server) handleAbort(writer http.ResponseWriter, request *http.Request) {
	if request.Method == http.MethodGet {
		if s.handler.ShouldAbort() {
			writer.WriteHeader(http.StatusGone)
		} else {
			writer.WriteHeader(http.StatusOK)
		}
	} else {
		s.handler.Abort()
	}
}

// handler holds the business logic of the server (upstream: ServerHandler, shared by its HTTP and
// RPC servers).
type handler struct {
	done                   chan any
	outputDestination      io.Writer
	reporter               reporters.Reporter
	alives                 []func() bool
	lock                   *sync.Mutex
	beforeSuiteState       beforeSuiteState
	reportBeforeSuiteState types.SpecState
	parallelTotal          int
	counter                int
	counterLock            *sync.Mutex
	shouldAbort            bool

	numSuiteDidBegins int
	numSuiteDidEnds   int
	procDidEnd        []bool
	aggregatedReport  types.Report
	reportHoldingArea []types.SpecReport
}

func newHandler(parallelTotal int, reporter reporters.Reporter, output io.Writer) *handler {
	return &handler{
		reporter:         reporter,
		lock:             &sync.Mutex{},
		counterLock:      &sync.Mutex{},
		alives:           make([]func() bool, parallelTotal),
		procDidEnd:       make([]bool, parallelTotal),
		beforeSuiteState: beforeSuiteState{Data: nil, State: types.SpecStateInvalid},

		parallelTotal:     parallelTotal,
		outputDestination: output,
		done:              make(chan any),
	}
}

func (h *handler) SpecSuiteWillBegin(report types.Report) error {
	h.lock.Lock()
	defer h.lock.Unlock()

	h.numSuiteDidBegins++

	// all summaries are identical, so it's fine to simply emit the last one of these
	if h.numSuiteDidBegins == h.parallelTotal {
		h.reporter.SuiteWillBegin(report)

		for _, summary := range h.reportHoldingArea {
			h.reporter.WillRun(summary)
			h.reporter.DidRun(summary)
		}

		h.reportHoldingArea = nil
	}

	return nil
}

func (h *handler) DidRun(report types.SpecReport) error {
	h.lock.Lock()
	defer h.lock.Unlock()

	if h.numSuiteDidBegins == h.parallelTotal {
		h.reporter.WillRun(report)
		h.reporter.DidRun(report)
	} else {
		h.reportHoldingArea = append(h.reportHoldingArea, report)
	}

	return nil
}

func (h *handler) SpecSuiteDidEnd(report types.Report) error {
	h.lock.Lock()
	defer h.lock.Unlock()

	h.numSuiteDidEnds++
	if proc := report.SuiteConfig.ParallelProcess; proc >= 1 && proc <= h.parallelTotal {
		h.procDidEnd[proc-1] = true
	}
	if h.numSuiteDidEnds == 1 {
		h.aggregatedReport = report
	} else {
		h.aggregatedReport = h.aggregatedReport.Add(report)
	}

	if h.numSuiteDidEnds == h.parallelTotal {
		h.reporter.SuiteDidEnd(h.aggregatedReport)
		close(h.done)
	}

	return nil
}

func (h *handler) EmitOutput(output []byte) error {
	h.lock.Lock()
	defer h.lock.Unlock()
	_, err := h.outputDestination.Write(output)
	return err
}

func (h *handler) EmitProgressReport(report types.ProgressReport) error {
	h.lock.Lock()
	defer h.lock.Unlock()
	h.reporter.EmitProgressReport(report)
	return nil
}

func (h *handler) registerAlive(proc int, alive func() bool) {
	h.lock.Lock()
	defer h.lock.Unlock()
	h.alives[proc-1] = alive
}

func (h *handler) procIsAlive(proc int) bool {
	h.lock.Lock()
	defer h.lock.Unlock()
	alive := h.alives[proc-1]
	if alive == nil {
		return true
	}
	return alive()
}

func (h *handler) procHasFinished(proc int) bool {
	h.lock.Lock()
	didEnd := h.procDidEnd[proc-1]
	h.lock.Unlock()

	return didEnd || !h.procIsAlive(proc)
}

func (h *handler) haveNonprimaryProcsFinished() bool {
	for i := 2; i <= h.parallelTotal; i++ {
		if !h.procHasFinished(i) {
			return false
		}
	}
	return true
}

func (h *handler) ReportBeforeSuiteCompleted(reportBeforeSuiteState types.SpecState) error {
	h.lock.Lock()
	defer h.lock.Unlock()
	h.reportBeforeSuiteState = reportBeforeSuiteState

	return nil
}

func (h *handler) ReportBeforeSuiteState(reportBeforeSuiteState *types.SpecState) error {
	proc1IsAlive := h.procIsAlive(1)
	h.lock.Lock()
	defer h.lock.Unlock()
	if h.reportBeforeSuiteState == types.SpecStateInvalid {
		if proc1IsAlive {
			return errEarly
		}
		return errGone
	}
	*reportBeforeSuiteState = h.reportBeforeSuiteState
	return nil
}

func (h *handler) BeforeSuiteCompleted(state beforeSuiteState) error {
	h.lock.Lock()
	defer h.lock.Unlock()
	h.beforeSuiteState = state

	return nil
}

func (h *handler) BeforeSuiteState(state *beforeSuiteState) error {
	proc1IsAlive := h.procIsAlive(1)
	h.lock.Lock()
	defer h.lock.Unlock()
	if h.beforeSuiteState.State == types.SpecStateInvalid {
		if proc1IsAlive {
			return errEarly
		}
		return errGone
	}
	*state = h.beforeSuiteState
	return nil
}

func (h *handler) HaveNonprimaryProcsFinished() error {
	if h.haveNonprimaryProcsFinished() {
		return nil
	}
	return errEarly
}

func (h *handler) AggregatedNonprimaryProcsReport(report *types.Report) error {
	if !h.haveNonprimaryProcsFinished() {
		return errEarly
	}
	h.lock.Lock()
	defer h.lock.Unlock()
	if h.numSuiteDidEnds == h.parallelTotal-1 {
		*report = h.aggregatedReport
		return nil
	}
	return errGone
}

func (h *handler) Counter(counter *int) error {
	h.counterLock.Lock()
	defer h.counterLock.Unlock()
	*counter = h.counter
	h.counter++
	return nil
}

func (h *handler) Abort() {
	h.lock.Lock()
	defer h.lock.Unlock()
	h.shouldAbort = true
}

func (h *handler) ShouldAbort() bool {
	h.lock.Lock()
	defer h.lock.Unlock()
	return h.shouldAbort
}

// result is the merged report of every process that reported the end of its suite, and whether
// all of them did.
func (h *handler) result() (types.Report, bool) {
	h.lock.Lock()
	defer h.lock.Unlock()
	return h.aggregatedReport, h.numSuiteDidEnds == h.parallelTotal
}
