//! 16-bit PCM WAV files (mono or stereo, any rate), via `hound`: prompts to
//! play and recordings of a mix. Reading loads the whole file (prompts are
//! short and played many times); writing streams frame by frame.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("wav: {0}")]
    Format(#[from] hound::Error),
    #[error("wav: only 16-bit integer PCM is supported, not {bits}-bit {format:?}")]
    Unsupported {
        bits: u16,
        format: hound::SampleFormat,
    },
    #[error("wav: {0} channels; mono or stereo only")]
    Channels(u16),
}

/// Decoded audio, interleaved when stereo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

impl Wav {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WavError> {
        Self::read(std::io::BufReader::new(
            File::open(path).map_err(hound::Error::from)?,
        ))
    }

    pub fn read(r: impl Read) -> Result<Self, WavError> {
        let mut reader = hound::WavReader::new(r)?;
        let spec = reader.spec();
        if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
            return Err(WavError::Unsupported {
                bits: spec.bits_per_sample,
                format: spec.sample_format,
            });
        }
        if !(1..=2).contains(&spec.channels) {
            return Err(WavError::Channels(spec.channels));
        }
        let samples = reader.samples::<i16>().collect::<Result<Vec<_>, _>>()?;
        Ok(Wav {
            rate: spec.sample_rate,
            channels: spec.channels,
            samples,
        })
    }

    /// Mono: stereo is averaged.
    pub fn to_mono(&self) -> Vec<i16> {
        if self.channels == 1 {
            return self.samples.clone();
        }
        self.samples
            .chunks_exact(2)
            .map(|c| ((c[0] as i32 + c[1] as i32) / 2) as i16)
            .collect()
    }
}

/// Streams 16-bit PCM into a WAV file; the header's lengths are written by
/// [`finish`](Self::finish) (or on drop, where errors are lost).
pub struct WavWriter<W: Write + Seek> {
    inner: hound::WavWriter<W>,
}

impl WavWriter<BufWriter<File>> {
    pub fn create(path: impl AsRef<Path>, rate: u32, channels: u16) -> Result<Self, WavError> {
        let file = BufWriter::new(File::create(path).map_err(hound::Error::from)?);
        Self::new(file, rate, channels)
    }
}

impl<W: Write + Seek> WavWriter<W> {
    pub fn new(w: W, rate: u32, channels: u16) -> Result<Self, WavError> {
        if !(1..=2).contains(&channels) {
            return Err(WavError::Channels(channels));
        }
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(WavWriter {
            inner: hound::WavWriter::new(w, spec)?,
        })
    }

    /// Appends interleaved samples.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let mut w = self.inner.get_i16_writer(samples.len() as u32);
        for &s in samples {
            w.write_sample(s);
        }
        w.flush()?;
        Ok(())
    }

    /// Brings the header up to date with what is written so far, so the
    /// file reads back whole even if it is never finished.
    pub fn flush(&mut self) -> Result<(), WavError> {
        Ok(self.inner.flush()?)
    }

    pub fn finish(self) -> Result<(), WavError> {
        Ok(self.inner.finalize()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn round_trips_mono_and_stereo_at_several_rates() {
        for (rate, channels) in [(8000, 1), (16000, 2), (44100, 1), (48000, 2)] {
            let samples: Vec<i16> = (0..960i32).map(|i| (i * 37 - 16000) as i16).collect();
            let mut buf = Cursor::new(Vec::new());
            let mut w = WavWriter::new(&mut buf, rate, channels).expect("writer");
            w.write(&samples[..500]).expect("write");
            w.write(&samples[500..]).expect("write");
            w.finish().expect("finish");
            let wav = Wav::read(Cursor::new(buf.into_inner())).expect("read");
            assert_eq!(
                wav,
                Wav {
                    rate,
                    channels,
                    samples: samples.clone()
                }
            );
        }
    }

    #[test]
    fn file_on_disk_and_stereo_to_mono() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.wav");
        let mut w = WavWriter::create(&path, 16000, 2).expect("create");
        w.write(&[100, 300, -100, -300]).expect("write");
        w.finish().expect("finish");
        let wav = Wav::open(&path).expect("open");
        assert_eq!(wav.to_mono(), vec![200, -200]);
    }

    #[test]
    fn rejects_what_it_cannot_play() {
        assert!(Wav::read(Cursor::new(b"RIFF....WAVEjunk".to_vec())).is_err());
        let mut buf = Cursor::new(Vec::new());
        assert!(matches!(
            WavWriter::new(&mut buf, 8000, 3),
            Err(WavError::Channels(3))
        ));
    }
}
