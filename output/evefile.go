package output

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/icmpids/icmpids/detector"
)

// eveFileMode is the permission of a new EVE file: alerts name hosts and
// attackers, so they are not world-readable.
const eveFileMode = 0o640

// EVEFile is an EVE sink writing to a file opened for append. Writes are
// buffered: call Flush, or put the EVEFile behind a Queue, which flushes
// whenever it runs empty, so a burst of alerts costs few writes and a lone
// alert reaches the file at once. Reopen serves log rotation. It is safe for
// concurrent use.
type EVEFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	bw   *bufio.Writer
	eve  *EVE
}

// SetMeta sets what later events say of their sensor and input (see
// EVE.SetMeta).
func (ef *EVEFile) SetMeta(m Meta) { ef.eve.SetMeta(m) }

// OpenEVEFile opens (creating it with mode 0640 if needed) the file at path
// for appending EVE lines.
func OpenEVEFile(path string) (*EVEFile, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	ef := &EVEFile{path: path, f: f, bw: bufio.NewWriter(f)}
	ef.eve = NewEVE((*eveFileWriter)(ef))
	return ef, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, eveFileMode)
	if err != nil {
		return nil, fmt.Errorf("eve: opening %s: %w", path, err)
	}
	return f, nil
}

// Path returns the file's path.
func (f *EVEFile) Path() string { return f.path }

// Emit implements detector.Sink: it buffers ev as one EVE alert line.
// After Close the event is lost and counted as a failed write.
func (f *EVEFile) Emit(ev *detector.Event) { f.eve.Emit(ev) }

// EmitStats buffers s as one EVE stats line.
func (f *EVEFile) EmitStats(s *StatsEvent) { f.eve.EmitStats(s) }

// Err returns the last write error (see EVE.Err).
func (f *EVEFile) Err() error { return f.eve.Err() }

// Counts returns how many lines were written and how many writes failed.
func (f *EVEFile) Counts() (written, failed uint64) { return f.eve.Counts() }

// Flush writes what is buffered to the file. It is a no-op once closed.
func (f *EVEFile) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return nil
	}
	if err := f.bw.Flush(); err != nil {
		return fmt.Errorf("eve: writing %s: %w", f.path, err)
	}
	return nil
}

// Reopen flushes and closes the file and opens its path anew, for log
// rotation (logrotate renames the file, then signals the sensor). If the
// path cannot be opened, the EVEFile keeps writing to the file it has and
// returns the error.
func (f *EVEFile) Reopen() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return fmt.Errorf("eve: reopening %s: %w", f.path, os.ErrClosed)
	}
	nf, err := openAppend(f.path)
	if err != nil {
		return err
	}
	var errs []error
	if err := f.bw.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("eve: writing %s before reopening: %w", f.path, err))
	}
	if err := f.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("eve: closing %s before reopening: %w", f.path, err))
	}
	f.f = nf
	f.bw.Reset(nf)
	return errors.Join(errs...)
}

// Close flushes and closes the file. Closing twice is not an error.
func (f *EVEFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return nil
	}
	var errs []error
	if err := f.bw.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("eve: writing %s: %w", f.path, err))
	}
	if err := f.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("eve: closing %s: %w", f.path, err))
	}
	f.f = nil
	f.bw.Reset(nil)
	return errors.Join(errs...)
}

// eveFileWriter is the io.Writer the EVEFile's encoder writes to: the
// current file's buffer, under the EVEFile's lock.
type eveFileWriter EVEFile

func (w *eveFileWriter) Write(p []byte) (int, error) {
	f := (*EVEFile)(w)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return 0, fmt.Errorf("%s: %w", f.path, os.ErrClosed)
	}
	return f.bw.Write(p)
}
