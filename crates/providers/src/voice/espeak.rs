//! Text to speech with `espeak-ng`: text on stdin, WAV on stdout.

use std::process::Command;
use std::time::Duration;

use super::audio::parse_wav;
use super::error::VoiceError;
use super::process::{last_line, run};
use super::{Audio, SpeechBackend, Transcript};

/// Longest voice name accepted (espeak voices are short: `en-us`, `en+f3`, `mb-en1`).
const MAX_VOICE_LEN: usize = 40;

/// The `espeak-ng` provider (synthesis only).
#[derive(Debug, Clone)]
pub struct EspeakTts {
    /// Program to run.
    pub program: String,
    /// Voice used when the request names none.
    pub default_voice: String,
    /// Kill the engine after this long.
    pub timeout: Duration,
    /// Longest text accepted, in characters.
    pub max_text_chars: usize,
    /// Largest WAV accepted from the engine.
    pub max_output_bytes: usize,
}

impl Default for EspeakTts {
    fn default() -> Self {
        EspeakTts {
            program: "espeak-ng".into(),
            default_voice: "en".into(),
            timeout: Duration::from_secs(30),
            max_text_chars: 5000,
            max_output_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Whether `v` is a plausible espeak voice name; it becomes an argument, so it must not look like a flag.
pub fn valid_voice(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VOICE_LEN
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+'))
}

impl SpeechBackend for EspeakTts {
    fn name(&self) -> &str {
        "espeak"
    }

    fn synthesize(
        &self,
        text: &str,
        voice: Option<&str>,
        format: Option<&str>,
        _model: Option<&str>,
    ) -> Result<Audio, VoiceError> {
        if let Some(f) = format
            && !f.eq_ignore_ascii_case("wav")
        {
            return Err(VoiceError::unsupported(format!(
                "espeak produces wav only, not {f:?}"
            )));
        }
        if text.trim().is_empty() {
            return Err(VoiceError::invalid("text is empty"));
        }
        let chars = text.chars().count();
        if chars > self.max_text_chars {
            return Err(VoiceError::too_large(format!(
                "text has {chars} characters; the limit is {}",
                self.max_text_chars
            )));
        }
        let voice = voice.unwrap_or(&self.default_voice);
        if !valid_voice(voice) {
            return Err(VoiceError::invalid(format!(
                "invalid voice name: {voice:?}"
            )));
        }
        let mut cmd = Command::new(&self.program);
        // -b 1: the text is UTF-8; no -m, so markup in the text is spoken, never interpreted.
        cmd.args(["-b", "1", "-v", voice, "--stdout", "--stdin"]);
        let out = run(
            cmd,
            &self.program,
            Some(text.as_bytes().to_vec()),
            self.timeout,
            self.max_output_bytes,
        )?;
        if !out.status.success() || out.stdout.is_empty() {
            let why = last_line(&out.stderr);
            return Err(if why.contains("voice does not exist") {
                VoiceError::invalid(format!("unknown espeak voice {voice:?}"))
            } else {
                VoiceError::internal(format!("{} failed ({}): {why}", self.program, out.status))
            });
        }
        // espeak writes its header before it knows the length; re-encode with exact sizes.
        let pcm = parse_wav(&out.stdout)
            .map_err(|e| VoiceError::internal(format!("espeak output: {}", e.message)))?;
        Ok(Audio {
            bytes: pcm.to_wav(),
            content_type: "audio/wav".into(),
            duration_ms: Some(u32::try_from(pcm.duration_ms()).unwrap_or(u32::MAX)),
        })
    }

    fn transcribe(
        &self,
        _audio: &[u8],
        _content_type: &str,
        _language: Option<&str>,
        _hint: Option<&str>,
        _model: Option<&str>,
    ) -> Result<Transcript, VoiceError> {
        Err(VoiceError::unsupported(
            "espeak only synthesizes speech; use pocketsphinx or openai to transcribe",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_voice;

    #[test]
    fn voice_names() {
        for ok in ["en", "en-us", "en+f3", "mb-en1", "en_GB"] {
            assert!(valid_voice(ok), "{ok}");
        }
        for bad in ["", "-w/tmp/x", "en us", "../x", "en;rm", &"a".repeat(41)] {
            assert!(!valid_voice(bad), "{bad}");
        }
    }
}
