//! Audio containers: format sniffing by magic bytes, WAV parsing (tolerant of streamed headers),
//! PCM conversion to 16 kHz mono, and WAV writing.

use super::error::VoiceError;

/// A container recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// RIFF/WAVE.
    Wav,
    /// MPEG audio (ID3 tag or frame sync).
    Mp3,
    /// Ogg (Vorbis or Opus).
    Ogg,
    /// FLAC.
    Flac,
    /// WebM / Matroska.
    Webm,
    /// MP4 / M4A (`ftyp` box).
    Mp4,
}

impl AudioFormat {
    /// The MIME type usually sent with this format.
    pub fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Ogg => "audio/ogg",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Webm => "audio/webm",
            AudioFormat::Mp4 => "audio/mp4",
        }
    }

    /// A file extension providers accept for this format.
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Flac => "flac",
            AudioFormat::Webm => "webm",
            AudioFormat::Mp4 => "m4a",
        }
    }
}

/// Recognises an audio container by its magic bytes (the declared content type is not trusted).
pub fn sniff(bytes: &[u8]) -> Option<AudioFormat> {
    let starts = |m: &[u8]| bytes.starts_with(m);
    if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WAVE" {
        Some(AudioFormat::Wav)
    } else if starts(b"ID3") || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        Some(AudioFormat::Mp3)
    } else if starts(b"OggS") {
        Some(AudioFormat::Ogg)
    } else if starts(b"fLaC") {
        Some(AudioFormat::Flac)
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some(AudioFormat::Webm)
    } else if bytes.len() >= 8 && &bytes[4..8] == b"ftyp" {
        Some(AudioFormat::Mp4)
    } else {
        None
    }
}

/// Decoded PCM: interleaved 16-bit samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Frames per second.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// Samples, `channels` per frame.
    pub samples: Vec<i16>,
}

impl Pcm {
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.frames() as u64 * 1000 / u64::from(self.sample_rate)
    }

    /// Mixes down to one channel and resamples to `rate` (what the speech models expect).
    pub fn to_mono(&self, rate: u32) -> Pcm {
        let ch = usize::from(self.channels.max(1));
        let mono: Vec<f32> = self
            .samples
            .chunks_exact(ch)
            .map(|f| f.iter().map(|s| f32::from(*s)).sum::<f32>() / ch as f32)
            .collect();
        if self.sample_rate == rate || mono.is_empty() || self.sample_rate == 0 {
            return Pcm {
                sample_rate: if self.sample_rate == 0 {
                    rate
                } else {
                    self.sample_rate
                },
                channels: 1,
                samples: mono.iter().map(|s| *s as i16).collect(),
            };
        }
        let samples = resample(&mono, self.sample_rate, rate);
        Pcm {
            sample_rate: rate,
            channels: 1,
            samples,
        }
    }

    /// Encodes as a canonical 16-bit PCM WAV file with exact sizes.
    pub fn to_wav(&self) -> Vec<u8> {
        let data_len = (self.samples.len() * 2) as u32;
        let block_align = self.channels * 2;
        let mut out = Vec::with_capacity(44 + data_len as usize);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&self.channels.to_le_bytes());
        out.extend_from_slice(&self.sample_rate.to_le_bytes());
        out.extend_from_slice(&(self.sample_rate * u32::from(block_align)).to_le_bytes());
        out.extend_from_slice(&block_align.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }
}

/// Half-width of the interpolation kernel, in input samples (at the output rate when downsampling).
const SINC_HALF_TAPS: f64 = 16.0;

/// Band-limited resampling (Hann-windowed sinc). Plain linear interpolation folds the synthetic voice's
/// high harmonics into the speech band when downsampling, which costs the recogniser whole words.
fn resample(input: &[f32], from: u32, to: u32) -> Vec<i16> {
    let ratio = f64::from(from) / f64::from(to);
    // Cut off a little below the lower Nyquist frequency.
    let cutoff = (1.0 / ratio).min(1.0) * 0.95;
    let half = SINC_HALF_TAPS / cutoff;
    let out_len = (input.len() as f64 / ratio).floor() as usize;
    let last = input.len() as i64 - 1;
    (0..out_len)
        .map(|i| {
            let t = i as f64 * ratio;
            let lo = ((t - half).ceil() as i64).max(0);
            let hi = ((t + half).floor() as i64).min(last);
            let mut acc = 0.0f64;
            let mut norm = 0.0f64;
            for k in lo..=hi {
                let x = t - k as f64;
                let arg = std::f64::consts::PI * x * cutoff;
                let sinc = if arg.abs() < 1e-9 {
                    1.0
                } else {
                    arg.sin() / arg
                };
                let window = 0.5 + 0.5 * (std::f64::consts::PI * x / half).cos();
                let w = sinc * window;
                acc += f64::from(input[k as usize]) * w;
                norm += w;
            }
            let v = if norm.abs() > 1e-9 { acc / norm } else { 0.0 };
            v.round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Sample rates a WAV file may declare, Hz.
const MIN_RATE: u32 = 1_000;
const MAX_RATE: u32 = 384_000;

/// Parses a WAV file into 16-bit PCM. A data chunk whose declared size runs past the end (a header written
/// before the length was known, as streaming encoders do) is read up to the end of the bytes.
pub fn parse_wav(bytes: &[u8]) -> Result<Pcm, VoiceError> {
    let bad = |m: &str| VoiceError::invalid(format!("invalid WAV audio: {m}"));
    if sniff(bytes) != Some(AudioFormat::Wav) {
        return Err(bad("missing RIFF/WAVE header"));
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let declared = le_u32(bytes, pos + 4) as usize;
        let body = pos + 8;
        let end = body.saturating_add(declared).min(bytes.len());
        if id == b"fmt " {
            if end - body < 16 {
                return Err(bad("fmt chunk too short"));
            }
            let mut tag = le_u16(bytes, body);
            let channels = le_u16(bytes, body + 2);
            let rate = le_u32(bytes, body + 4);
            let bits = le_u16(bytes, body + 14);
            // WAVE_FORMAT_EXTENSIBLE carries the real tag in its sub-format GUID.
            if tag == 0xFFFE && end - body >= 26 {
                tag = le_u16(bytes, body + 24);
            }
            fmt = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = fmt.ok_or_else(|| bad("data before fmt chunk"))?;
            if channels == 0 || rate == 0 {
                return Err(bad("zero channels or sample rate"));
            }
            // Resampling scales the sample count by the rate ratio: a 1 Hz header must not make a small
            // file decode into gigabytes.
            if !(MIN_RATE..=MAX_RATE).contains(&rate) {
                return Err(bad(&format!(
                    "sample rate {rate} Hz is outside {MIN_RATE}..={MAX_RATE}"
                )));
            }
            let samples = decode_samples(&bytes[body..end], tag, bits)
                .ok_or_else(|| bad(&format!("unsupported encoding (format {tag}, {bits} bits)")))?;
            return Ok(Pcm {
                sample_rate: rate,
                channels,
                samples,
            });
        }
        // Chunks are padded to an even length.
        pos = body.saturating_add(declared).saturating_add(declared & 1);
    }
    Err(bad("no data chunk"))
}

fn decode_samples(data: &[u8], tag: u16, bits: u16) -> Option<Vec<i16>> {
    match (tag, bits) {
        (1, 8) => Some(data.iter().map(|b| (i16::from(*b) - 128) << 8).collect()),
        (1, 16) => Some(
            data.chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        (1, 24) => Some(
            data.chunks_exact(3)
                .map(|c| i16::from_le_bytes([c[1], c[2]]))
                .collect(),
        ),
        (1, 32) => Some(
            data.chunks_exact(4)
                .map(|c| i16::from_le_bytes([c[2], c[3]]))
                .collect(),
        ),
        (3, 32) => Some(
            data.chunks_exact(4)
                .map(|c| {
                    let f = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    (f.clamp(-1.0, 1.0) * 32767.0) as i16
                })
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, channels: u16, frames: usize) -> Pcm {
        let samples = (0..frames * usize::from(channels))
            .map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16)
            .collect();
        Pcm {
            sample_rate: rate,
            channels,
            samples,
        }
    }

    #[test]
    fn wav_round_trip_and_duration() {
        let p = tone(22050, 1, 22050);
        let wav = p.to_wav();
        assert_eq!(sniff(&wav), Some(AudioFormat::Wav));
        let back = parse_wav(&wav).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.duration_ms(), 1000);
    }

    #[test]
    fn streamed_header_sizes_are_tolerated() {
        let mut wav = tone(16000, 1, 1600).to_wav();
        // What a streaming writer leaves: sizes it could not know, here "huge".
        wav[4..8].copy_from_slice(&0x7fff_f024u32.to_le_bytes());
        wav[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        let p = parse_wav(&wav).unwrap();
        assert_eq!(p.frames(), 1600);
    }

    #[test]
    fn a_header_whose_rate_would_blow_up_resampling_is_refused() {
        for rate in [1u32, 999, 384_001, u32::MAX] {
            let mut wav = tone(16000, 1, 1600).to_wav();
            wav[24..28].copy_from_slice(&rate.to_le_bytes());
            let e = parse_wav(&wav).expect_err("refused");
            assert!(format!("{e}").contains("sample rate"), "{rate}: {e}");
        }
    }

    #[test]
    fn resampling_to_16k_mono_keeps_duration() {
        let p = tone(22050, 2, 44100);
        let m = p.to_mono(16000);
        assert_eq!((m.sample_rate, m.channels), (16000, 1));
        assert!((m.duration_ms() as i64 - 2000).abs() <= 1);
    }

    #[test]
    fn sniffing_rejects_non_audio() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"hello world, not audio"), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b"ID3\x04\0\0"), Some(AudioFormat::Mp3));
        assert_eq!(sniff(b"OggS\0\x02"), Some(AudioFormat::Ogg));
        assert!(parse_wav(b"RIFF\0\0\0\0WAVE").is_err());
    }
}
