package hierarchy

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The run encoders are pooled: a zstd encoder allocates its history and tables once, and a
// new one per run (their zeroing) was half of a parent's CPU in a round of complete runs.
// Each encoder is sized to the runs it writes: a window of runWindow (four chunks: on the
// Mozilla catalog it compresses as well as the default 8 MiB, 0.4 % better in fact, where one
// chunk's window costs 5.6 % and two chunks' 1.1 %) and the lower-memory encoder state.
// Frames carry no checksum: a run has several, and its digest checks every record end to end.

// runWindow is the window of the run encoders: a power of two, at most maxRunWindow (what a
// child accepts).
const runWindow = 4 * maxChunkBytes

var runEncoders = runEncoderPool()

// runEncoderPool is a pool of run encoders, with the options above and extra.
func runEncoderPool(extra ...zstd.EOption) *sync.Pool {
	opts := append([]zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(runWindow), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false)}, extra...)
	return &sync.Pool{New: func() any {
		enc, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			// The options are constants: an error is a programming error, caught by every test.
			panic(fmt.Sprintf("run encoder options: %v", err))
		}
		return enc
	}}
}

// frameWriter is one zstd frame being written to w by a pooled encoder.
type frameWriter struct {
	enc  *zstd.Encoder
	pool *sync.Pool
}

// newFrame starts a frame written to w.
func newFrame(w io.Writer) *frameWriter { return newFrameFrom(runEncoders, w) }

// newFrameFrom starts a frame written to w by an encoder of pool (runEncoders, dictEncoders).
func newFrameFrom(pool *sync.Pool, w io.Writer) *frameWriter {
	enc := pool.Get().(*zstd.Encoder)
	enc.Reset(w)
	return &frameWriter{enc: enc, pool: pool}
}

func (f *frameWriter) Write(p []byte) (int, error) { return f.enc.Write(p) }

// Close ends the frame and returns the encoder to the pool; after an error the encoder is
// dropped (its state is unknown).
func (f *frameWriter) Close() error {
	if f.enc == nil {
		return nil
	}
	enc := f.enc
	f.enc = nil
	if err := enc.Close(); err != nil {
		return fmt.Errorf("finish a zstd frame: %w", err)
	}
	enc.Reset(nil) // drop the reference to the writer before pooling
	f.pool.Put(enc)
	return nil
}

// abort ends the frame after a failed write: the encoder is not pooled again.
func (f *frameWriter) abort() { f.enc = nil }
