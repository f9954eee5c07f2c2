package capture

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// FileState is where one file of a Set stands.
type FileState uint8

// File states.
const (
	FilePending FileState = iota // probed, not opened yet (or waiting in the merge)
	FileOpen                     // being read
	FileDone                     // read to its clean end
	FileDamaged                  // cut short or corrupt: what came before counts
	FileSkipped                  // found in a directory, not a capture: left out
)

// String names the state.
func (s FileState) String() string {
	switch s {
	case FilePending:
		return "pending"
	case FileOpen:
		return "open"
	case FileDone:
		return "ok"
	case FileDamaged:
		return "damaged"
	case FileSkipped:
		return "skipped"
	}
	return "unknown"
}

// FileInfo describes one file of a Set.
type FileInfo struct {
	// Path is the file's name as given or as found in a directory
	// ("standard input" for "-").
	Path string
	// FromDir is set for a file found by walking a directory argument.
	FromDir bool
	// Size is the file's size on disk (compressed, for gzip), -1 when
	// unknown (standard input).
	Size int64
	// Read is the bytes read from disk so far (Size once the file is done).
	Read int64
	// Frames is the number of frames the file delivered.
	Frames uint64
	// First and Last are the packet times of its first and last frames.
	First, Last time.Time
	State       FileState
	// Err says why the file is damaged or skipped.
	Err error
}

// Progress is how far a Set has got.
type Progress struct {
	Files, FilesDone int   // files in the set (skipped ones excluded), files finished
	Bytes, Total     int64 // bytes read from disk, total size (-1 if unknown)
	Frames           uint64
}

// Set reads several capture files as one stream in packet-time order: a
// k-way merge by timestamp over all the files' readers, so that rotated
// capture sets (tcpdump -G / -C) and captures taken side by side replay as
// the sensor would have seen them live.
//
// OpenSet probes every file for its first timestamp and closes it again;
// a file is opened for good only when the merge reaches its first packet,
// and closed at its end. Memory is bounded by the files whose time ranges
// overlap: one read buffer and the current frame of each open file. Frames
// of equal time come in the order the files were listed.
//
// A file that turns out to be damaged while reading is reported once by
// Next (an error naming it) and left out from there on; the others go on.
// A Set is not safe for concurrent use.
type Set struct {
	files   []*setFile
	h       setHeap
	last    *setFile // the file whose frame Next returned last
	frames  uint64
	skipped []error
	// ctx ends waits for a FIFO's writer and reads from streams;
	// waiting is told once per FIFO that has no writer yet.
	ctx     context.Context
	waiting func(path string)
}

// ErrInterrupted is returned when the context given to OpenSetContext
// ends while a FIFO waits for its writer or a stream for data.
var ErrInterrupted = errors.New("interrupted")

type setFile struct {
	FileInfo
	index int // order in the set: the tie-break for equal times
	r     *FileReader
	count *countingFile
	fr    Frame     // the current frame (open files)
	next  time.Time // merge key: first frame time (pending) or fr.Timestamp
	hi    int       // position in the merge heap, -1 when out of it
	stdin bool
	// stream: a pipe, FIFO or device (e.g. <(tcpdump -w -)): it cannot be
	// read twice, so the probe keeps it open, like standard input.
	stream bool
	// reported: Next has returned the file's damage.
	reported bool
}

// OpenSet opens a set of capture files. paths are files (pcap, pcapng,
// gzip-compressed or not; "-" is standard input, at most once) and
// directories, walked recursively; the files found in a directory are
// taken in natural name order (cap.pcap2 before cap.pcap10), so a rotated
// set keeps its order where packet times tie.
//
// A file named in paths that cannot be opened or is no capture fails
// OpenSet with an error naming it. A file found in a directory that is no
// capture (ErrNotCapture: notes, checksums, an empty file) is skipped and
// listed by Skipped; one that is a capture but damaged in its header, or
// unreadable, stays in the set as damaged and Next reports it first. A
// directory without any capture file is an error.
func OpenSet(paths []string) (*Set, error) {
	return OpenSetContext(context.Background(), paths, nil)
}

// OpenSetContext is OpenSet whose waits end with ctx: opening a FIFO that
// has no writer yet (waiting, if not nil, is told its path once, after a
// moment) and reading from a FIFO, a pipe or standard input. When ctx
// ends, the wait returns an error wrapping ErrInterrupted at once.
func OpenSetContext(ctx context.Context, paths []string, waiting func(path string)) (*Set, error) {
	s := &Set{ctx: ctx, waiting: waiting}
	seen := map[string]*setFile{}
	inDir := map[string][]*setFile{} // per directory argument: the files found
	var stdin bool
	for _, p := range paths {
		if p == "-" {
			if stdin {
				return nil, errors.New(`standard input ("-") given more than once`)
			}
			stdin = true
			s.files = append(s.files, &setFile{FileInfo: FileInfo{Path: "standard input", Size: -1}, stdin: true})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err // *fs.PathError naming the file
		}
		found := []string{p}
		if st.IsDir() {
			var skipped []error
			if found, skipped, err = walkDir(p); err != nil {
				return nil, err
			}
			s.skipped = append(s.skipped, skipped...)
		}
		for _, path := range found {
			key := path
			if abs, err := filepath.Abs(path); err == nil {
				key = abs
			}
			f := seen[key]
			if f == nil {
				f = &setFile{FileInfo: FileInfo{Path: path, Size: -1, FromDir: st.IsDir()}}
				seen[key] = f
				s.files = append(s.files, f)
			}
			if st.IsDir() {
				inDir[p] = append(inDir[p], f)
			} else {
				f.FromDir = false // named on its own: held to the stricter rule
			}
		}
	}
	// Probe every file: its size, its first packet time, and whether it is
	// a capture at all.
	n := 0
	for _, f := range s.files {
		if err := s.probe(f); err != nil {
			switch {
			case !f.FromDir:
				s.Close()
				return nil, err
			case errors.Is(err, ErrNotCapture):
				f.State, f.Err = FileSkipped, err
				f.reported = true
				s.skipped = append(s.skipped, err)
				continue
			default:
				f.State, f.Err = FileDamaged, err
			}
		}
		n++
	}
	for _, p := range paths {
		found := inDir[p]
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			continue
		}
		if !slices.ContainsFunc(found, func(f *setFile) bool { return f.State != FileSkipped }) {
			s.Close()
			return nil, fmt.Errorf("%s: directory holds no capture file (%d other files)", p, len(found))
		}
	}
	if n == 0 {
		return nil, errors.New("no capture files given")
	}
	for i, f := range s.files {
		f.index = i
		if f.State == FilePending || f.State == FileOpen {
			heap.Push(&s.h, f)
		}
	}
	return s, nil
}

// walkDir lists the regular files under dir (symbolic links to files
// included, hidden files and directories excluded), each directory's
// entries in natural order.
func walkDir(dir string) ([]string, []error, error) {
	var out []string
	var skipped []error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(path)
			switch {
			case err != nil: // dangling, or a loop
				skipped = append(skipped, fmt.Errorf("%s: a symbolic link to nothing readable: %v", path, errors.Unwrap(err)))
				return nil
			case !st.Mode().IsRegular():
				skipped = append(skipped, fmt.Errorf("%s: a symbolic link to a %s, not a regular file", path, kindOf(st.Mode())))
				return nil
			}
		} else if !d.Type().IsRegular() {
			skipped = append(skipped, fmt.Errorf("%s: a %s, not a regular file (name it on its own to read it)", path, kindOf(d.Type())))
			return nil
		}
		out = append(out, path)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.SortStableFunc(out, func(a, b string) int {
		da, db := filepath.Dir(a), filepath.Dir(b)
		if da != db {
			return naturalCompare(da, db)
		}
		return naturalCompare(filepath.Base(a), filepath.Base(b))
	})
	return out, skipped, nil
}

// kindOf names a file mode's type for a message.
func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}

// naturalCompare orders strings with runs of digits compared by value:
// "cap.pcap2" < "cap.pcap10", "cap.pcap" < "cap.pcap1".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na := strings.TrimLeft(a[:da], "0")
			nb := strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			if c := cmp.Compare(da, db); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// probe opens f, reads its first frame and, unless it is standard input
// or another stream (which cannot be read twice), closes it again. A file whose header is
// sound but whose first record is damaged is marked damaged, not failed.
func (s *Set) probe(f *setFile) error {
	if err := s.open(f); err != nil {
		return err
	}
	fr, err := f.r.Next()
	switch {
	case errors.Is(err, io.EOF):
		f.closeReader()
		f.State = FileDone
		f.Read = f.Size
		return nil
	case err != nil:
		f.closeReader()
		f.State, f.Err = FileDamaged, err
		return nil
	}
	f.next = fr.Timestamp
	f.First = fr.Timestamp
	if f.stdin || f.stream {
		f.fr = fr
		f.State = FileOpen
		f.Frames = 1
		f.Last = fr.Timestamp
		return nil
	}
	f.closeReader()
	f.State = FilePending
	f.Read = 0
	return nil
}

// fifoWait is how long opening a FIFO may block before the set says it
// waits for a writer.
const fifoWait = 300 * time.Millisecond

// openPath opens path for reading. A FIFO without a writer blocks open(2)
// beyond any signal's reach: it is opened in a goroutine the set can
// abandon when its context ends, and a stream's reads end with the
// context too (its file is closed, which Go's poller wakes readers for).
func (s *Set) openPath(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		f, err := os.Open(path)
		if err == nil && st != nil && st.Mode()&(os.ModeNamedPipe|os.ModeCharDevice|os.ModeSocket) != 0 {
			s.closeOnDone(f)
		}
		return f, err
	}
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	timer := time.NewTimer(fifoWait)
	defer timer.Stop()
	for told := false; ; {
		select {
		case o := <-ch:
			if o.err == nil {
				s.closeOnDone(o.f)
			}
			return o.f, o.err
		case <-timer.C:
			if !told && s.waiting != nil {
				s.waiting(path)
			}
			told = true
		case <-s.ctx.Done():
			go func() { // a writer may still come: close what it opens
				if o := <-ch; o.f != nil {
					o.f.Close()
				}
			}()
			return nil, fmt.Errorf("%s: %w while waiting for a writer", path, ErrInterrupted)
		}
	}
}

// closeOnDone closes f when the set's context ends, so a read blocked on
// a stream returns.
func (s *Set) closeOnDone(f *os.File) {
	if s.ctx.Done() != nil {
		context.AfterFunc(s.ctx, func() { f.Close() })
	}
}

// open opens f's reader, counting the bytes read from disk.
func (s *Set) open(f *setFile) error {
	if f.stdin {
		r, err := newFileReader(f.Path, io.NopCloser(os.Stdin))
		if err != nil {
			return err
		}
		f.r = r
		return nil
	}
	file, err := s.openPath(f.Path)
	if err != nil {
		return err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if st.IsDir() {
		file.Close()
		return &os.PathError{Op: "open", Path: f.Path, Err: syscall.EISDIR}
	}
	f.Size = st.Size()
	f.stream = !st.Mode().IsRegular()
	f.count = &countingFile{f: file}
	r, err := newFileReader(f.Path, f.count)
	if err != nil {
		return err
	}
	f.r = r
	return nil
}

func (f *setFile) closeReader() {
	if f.r != nil {
		f.r.Close()
		f.r = nil
	}
	f.count = nil
}

// read is the bytes read from f's file so far.
func (f *setFile) read() int64 {
	if f.count != nil {
		return f.count.n
	}
	return f.Read
}

// Next returns the earliest pending frame of the set. Its Data is valid
// until the next call. At the end of every file it returns io.EOF. When a
// file turns out damaged it returns an error naming the file (wrapping
// ErrTruncated, ErrMalformed or the I/O error) and drops that file; call
// Next again to go on with the others.
func (s *Set) Next() (Frame, error) {
	fr, err := s.next()
	if err != nil {
		return Frame{}, err
	}
	return *fr, nil
}

func (s *Set) next() (*Frame, error) {
	if f := s.last; f != nil {
		s.last = nil
		if err := s.advance(f); err != nil {
			return nil, err
		}
	}
	// Files damaged in the probe are reported first, once.
	for _, f := range s.files {
		if f.State == FileDamaged && !f.reported {
			f.reported = true
			return nil, f.Err
		}
	}
	for len(s.h) > 0 {
		f := s.h[0]
		if f.State == FilePending {
			// The merge has reached this file: open it for good.
			if err := s.open(f); err != nil {
				heap.Pop(&s.h)
				f.closeReader()
				f.State, f.Err = FileDamaged, err
				f.reported = true
				return nil, err
			}
			f.State = FileOpen
			fr, err := f.r.Next()
			if err != nil {
				heap.Pop(&s.h)
				s.finish(f, err)
				if f.State == FileDamaged {
					return nil, f.Err
				}
				continue
			}
			f.fr = fr
			f.Frames = 1
			f.Last = fr.Timestamp
			f.next = fr.Timestamp
			heap.Fix(&s.h, 0)
			continue
		}
		s.last = f
		s.frames++
		return &f.fr, nil
	}
	return nil, io.EOF
}

// CurrentPath is the path of the file the last frame came from ("" before
// the first).
func (s *Set) CurrentPath() string {
	if s.last == nil {
		return ""
	}
	return s.last.Path
}

// NextRef is Next returning a pointer to the frame instead of a copy (the
// hot path of a replay): the Frame and its Data are valid until the next
// call.
func (s *Set) NextRef() (*Frame, error) {
	fr, err := s.next()
	return fr, err
}

// advance reads the next frame of f, whose current frame was just
// returned, and puts f back into the merge.
func (s *Set) advance(f *setFile) error {
	if err := f.r.NextInto(&f.fr); err != nil {
		heap.Remove(&s.h, f.hi)
		s.finish(f, err)
		if f.State == FileDamaged {
			return f.Err
		}
		return nil
	}
	f.Frames++
	f.Last = f.fr.Timestamp
	f.next = f.fr.Timestamp
	if len(s.h) > 1 { // one file: nothing to reorder
		heap.Fix(&s.h, f.hi)
	}
	return nil
}

// finish closes f at the end of its data: err is io.EOF or the damage.
func (s *Set) finish(f *setFile, err error) {
	if errors.Is(err, io.EOF) {
		f.State = FileDone
		f.Read = f.read()
		if f.Size >= 0 {
			f.Read = f.Size
		}
	} else {
		f.State, f.Err = FileDamaged, err
		f.Read = f.read()
		f.reported = true
	}
	f.closeReader()
	f.fr = Frame{}
}

// Files returns a snapshot of every file of the set, in set order, skipped
// files included.
func (s *Set) Files() []FileInfo {
	out := make([]FileInfo, 0, len(s.files)+len(s.skipped))
	for _, f := range s.files {
		fi := f.FileInfo
		fi.Read = f.read()
		out = append(out, fi)
	}
	return out
}

// Skipped lists the files found in directories that are not captures, one
// error naming each.
func (s *Set) Skipped() []error { return s.skipped }

// Progress returns how far the set has got. It does not allocate.
func (s *Set) Progress() Progress {
	p := Progress{Frames: s.frames}
	for _, f := range s.files {
		if f.State == FileSkipped {
			continue
		}
		p.Files++
		if f.State == FileDone || f.State == FileDamaged {
			p.FilesDone++
			p.Bytes += max(f.Size, f.read())
		} else {
			p.Bytes += f.read()
		}
		if f.Size < 0 {
			p.Total = -1
		} else if p.Total >= 0 {
			p.Total += f.Size
		}
	}
	return p
}

// Current is the file whose frame Next returned last ("" before the first).
func (s *Set) Current() string {
	if s.last == nil {
		return ""
	}
	return s.last.Path
}

// Close closes every open file.
func (s *Set) Close() error {
	for _, f := range s.files {
		f.closeReader()
	}
	return nil
}

// countingFile counts the bytes read from a file.
type countingFile struct {
	f *os.File
	n int64
}

func (c *countingFile) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingFile) Close() error { return c.f.Close() }

// setHeap orders files by their next frame's time, then by set order.
type setHeap []*setFile

func (h setHeap) Len() int { return len(h) }
func (h setHeap) Less(i, j int) bool {
	if c := h[i].next.Compare(h[j].next); c != 0 {
		return c < 0
	}
	return h[i].index < h[j].index
}
func (h setHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hi, h[j].hi = i, j
}
func (h *setHeap) Push(x any) {
	f := x.(*setFile)
	f.hi = len(*h)
	*h = append(*h, f)
}
func (h *setHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	f.hi = -1
	return f
}
