package output

import (
	"slices"
	"testing"
)

// TestRing: items come out oldest first across the array's end; Peek
// leaves them queued (a sender that lost its connection sends them
// again); Push refuses when full; Pop clears the slots it frees (no
// reference to a delivered event is kept) and never takes more than is
// queued.
func TestRing(t *testing.T) {
	type step struct {
		push      []int // pushed in order, before pop
		refused   int   // how many of them Push refuses
		pop       int
		peek      int
		want      []int // Peek's result after the step
		wantLen   int
		wantEmpty []int // slots that must be empty after the step
	}
	for _, tc := range []struct {
		name  string
		size  int
		steps []step
	}{
		{"fifo", 4, []step{
			{push: []int{1, 2, 3}, peek: 10, want: []int{1, 2, 3}, wantLen: 3},
			{peek: 2, want: []int{1, 2}, wantLen: 3}, // peeking again sees the same
			{pop: 2, peek: 10, want: []int{3}, wantLen: 1, wantEmpty: []int{0, 1}},
		}},
		{"full", 3, []step{
			{push: []int{1, 2, 3, 4, 5}, refused: 2, peek: 10, want: []int{1, 2, 3}, wantLen: 3},
			{pop: 1},
			{push: []int{6}, peek: 10, want: []int{2, 3, 6}, wantLen: 3},
		}},
		{"wraps", 3, []step{
			{push: []int{1, 2, 3}, pop: 2},
			{push: []int{4, 5}, peek: 10, want: []int{3, 4, 5}, wantLen: 3},
			{pop: 2, peek: 10, want: []int{5}, wantLen: 1, wantEmpty: []int{2, 0}},
			{push: []int{6, 7}, pop: 1, peek: 10, want: []int{6, 7}, wantLen: 2},
		}},
		{"pop_more_than_queued", 2, []step{
			{push: []int{1}, pop: 5, peek: 10, want: nil, wantLen: 0, wantEmpty: []int{0}},
			{push: []int{2, 3}, peek: 10, want: []int{2, 3}, wantLen: 2},
		}},
		{"size_0_is_1", 0, []step{
			{push: []int{1, 2}, refused: 1, peek: 10, want: []int{1}, wantLen: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing[*int](tc.size)
			for i, s := range tc.steps {
				refused := 0
				for _, v := range s.push {
					if !r.Push(&v) {
						refused++
					}
				}
				r.Pop(s.pop)
				var got []int
				for _, p := range r.Peek(nil, s.peek) {
					got = append(got, *p)
				}
				if refused != s.refused || !slices.Equal(got, s.want) || (s.peek > 0 && r.Len() != s.wantLen) {
					t.Errorf("step %d: refused %d, peek %v, len %d; want %d, %v, %d", i, refused, got, r.Len(), s.refused, s.want, s.wantLen)
				}
				for _, slot := range s.wantEmpty {
					if r.buf[slot] != nil {
						t.Errorf("step %d: slot %d still holds %d after Pop", i, slot, *r.buf[slot])
					}
				}
			}
			if r.Cap() != max(tc.size, 1) {
				t.Errorf("cap %d, want %d", r.Cap(), max(tc.size, 1))
			}
		})
	}
}
