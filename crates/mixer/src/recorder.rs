//! Recording a conference's mix to a WAV file without slowing the media
//! thread: [`Recorder::push`] copies a frame into a recycled buffer and
//! hands it to a writer thread over a bounded channel. It never allocates
//! and never blocks; when the writer falls behind, the frame is dropped
//! and counted. The writer rewrites the WAV header every couple of
//! seconds, so a file cut short by a crash is still valid up to there.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use media::wav::{WavError, WavWriter};

/// Buffers in flight: ~1.3 s of 20 ms frames of slack for a slow disk.
const POOL: usize = 64;
/// Samples per buffer: the longest tick (40 ms) at 48 kHz.
const BUF_SAMPLES: usize = 48000 * 40 / 1000;
/// How often the header is brought up to date.
const CHECKPOINT_SECS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("recording {path}: {err}")]
    Create { path: PathBuf, err: WavError },
    #[error("recording: cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub path: PathBuf,
    /// Audio written, in milliseconds.
    pub duration_ms: u64,
    /// Frames lost because the writer was behind (or had failed).
    pub dropped_frames: u64,
    /// The first write error, after which the file stops growing.
    pub error: Option<String>,
}

/// Writer thread's side of the result.
struct Written {
    samples: u64,
    error: Option<String>,
}

/// A 16-bit mono WAV being written by its own thread.
pub struct Recorder {
    path: PathBuf,
    rate: u32,
    full: Option<SyncSender<Vec<i16>>>,
    empty: Receiver<Vec<i16>>,
    writer: Option<JoinHandle<Written>>,
    dropped: u64,
}

impl Recorder {
    /// Creates the file (blocking: call it from a control thread) and
    /// starts the writer.
    pub fn start(path: impl AsRef<Path>, rate: u32) -> Result<Recorder, RecordError> {
        let path = path.as_ref().to_path_buf();
        let wav = WavWriter::create(&path, rate, 1).map_err(|err| RecordError::Create {
            path: path.clone(),
            err,
        })?;
        let (full_tx, full_rx) = sync_channel::<Vec<i16>>(POOL);
        let (empty_tx, empty_rx) = sync_channel::<Vec<i16>>(POOL);
        for _ in 0..POOL {
            // Cannot fail: the channel has room for the whole pool.
            let _ = empty_tx.try_send(Vec::with_capacity(BUF_SAMPLES));
        }
        let writer = std::thread::Builder::new()
            .name("mixer-recorder".into())
            .spawn(move || write_loop(wav, rate, full_rx, empty_tx))
            .map_err(RecordError::Thread)?;
        Ok(Recorder {
            path,
            rate,
            full: Some(full_tx),
            empty: empty_rx,
            writer: Some(writer),
            dropped: 0,
        })
    }

    /// Queues samples for writing; never blocks, never allocates. A frame
    /// that finds no free buffer or a full queue is dropped and counted.
    pub fn push(&mut self, samples: &[i16]) {
        for chunk in samples.chunks(BUF_SAMPLES) {
            let Some(tx) = self.full.as_ref() else { return };
            let Ok(mut buf) = self.empty.try_recv() else {
                self.dropped += 1;
                continue;
            };
            buf.clear();
            buf.extend_from_slice(chunk);
            match tx.try_send(buf) {
                Ok(()) => {}
                // The pool bounds what is in flight, so the queue is
                // never full; a dead writer is the only way here.
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.dropped += 1;
                }
            }
        }
    }

    /// Frames dropped so far.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what is queued, finalises the header and says what was
    /// recorded. Blocks until the writer is done: call it off the media
    /// thread (or accept a short wait at the end of a conference).
    pub fn finish(mut self) -> RecordingSummary {
        self.full = None;
        let written = match self.writer.take().map(JoinHandle::join) {
            Some(Ok(w)) => w,
            _ => Written {
                samples: 0,
                error: Some("writer thread panicked".into()),
            },
        };
        RecordingSummary {
            path: self.path.clone(),
            duration_ms: written.samples * 1000 / self.rate.max(1) as u64,
            dropped_frames: self.dropped,
            error: written.error,
        }
    }
}

impl Drop for Recorder {
    /// Dropped without `finish`: the writer still drains the queue and
    /// finalises the file, on its own, without being waited for.
    fn drop(&mut self) {
        self.full = None;
    }
}

fn write_loop(
    mut wav: WavWriter<std::io::BufWriter<std::fs::File>>,
    rate: u32,
    full: Receiver<Vec<i16>>,
    empty: SyncSender<Vec<i16>>,
) -> Written {
    let mut samples = 0u64;
    let mut since_checkpoint = 0u64;
    let checkpoint = (rate * CHECKPOINT_SECS) as u64;
    let mut error = None;
    // Ends when the Recorder is finished or dropped.
    while let Ok(buf) = full.recv() {
        if error.is_none() {
            match wav.write(&buf) {
                Ok(()) => {
                    samples += buf.len() as u64;
                    since_checkpoint += buf.len() as u64;
                }
                Err(e) => error = Some(e.to_string()),
            }
            if since_checkpoint >= checkpoint && error.is_none() {
                since_checkpoint = 0;
                if let Err(e) = wav.flush() {
                    error = Some(e.to_string());
                }
            }
        }
        // The media thread may be gone; then the buffer is simply freed.
        let _ = empty.try_send(buf);
    }
    if let Err(e) = wav.finish() {
        error.get_or_insert(e.to_string());
    }
    Written { samples, error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::wav::Wav;

    #[test]
    fn writes_every_frame_and_a_valid_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.wav");
        let mut r = Recorder::start(&path, 8000).expect("start");
        let frame: Vec<i16> = (0..160).map(|i| i as i16).collect();
        for _ in 0..50 {
            r.push(&frame);
            // Pace like a media thread, so nothing is dropped.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let s = r.finish();
        assert_eq!(s.dropped_frames, 0);
        assert_eq!(s.duration_ms, 1000);
        assert_eq!(s.error, None);
        let wav = Wav::open(&path).expect("valid wav");
        assert_eq!(wav.samples.len(), 8000);
        assert_eq!(&wav.samples[160..320], &frame[..]);
    }

    #[test]
    fn the_file_is_valid_before_it_is_finished() {
        // As if the process died: read the file while the recorder runs.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.wav");
        let mut r = Recorder::start(&path, 8000).expect("start");
        let frame = [100i16; 160];
        for _ in 0..150 {
            r.push(&frame);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The writer has passed the 2 s checkpoint by now.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let n = loop {
            let n = Wav::open(&path).map_or(0, |w| w.samples.len());
            if n >= 16000 || std::time::Instant::now() > deadline {
                break n;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(n >= 16000, "{n} samples readable before finish");
        assert_eq!(r.finish().duration_ms, 3000);
    }

    #[test]
    fn a_flood_drops_frames_and_counts_them_instead_of_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.wav");
        let mut r = Recorder::start(&path, 48000).expect("start");
        let frame = vec![7i16; 960];
        // Far faster than any disk: some of these cannot be queued.
        for _ in 0..20_000 {
            r.push(&frame);
        }
        let s = r.finish();
        assert!(s.dropped_frames > 0);
        let written = Wav::open(&path).expect("valid").samples.len() as u64;
        assert_eq!(written / 960 + s.dropped_frames, 20_000);
        assert_eq!(s.duration_ms, written * 1000 / 48000);
    }

    #[test]
    fn a_bad_path_is_an_error() {
        assert!(Recorder::start("/nonexistent-dir/x/y.wav", 8000).is_err());
    }
}
