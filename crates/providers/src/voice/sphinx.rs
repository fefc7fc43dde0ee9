//! Speech to text with `pocketsphinx_continuous` and Debian's US English model. A hint becomes a JSGF
//! grammar (the phrase, or any sequence of its words), which makes synthetic speech come back exactly;
//! without one the generic language model is used.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::audio::{AudioFormat, parse_wav, sniff};
use super::error::VoiceError;
use super::process::{last_line, run};
use super::{Audio, SpeechBackend, Transcript};

/// Sample rate of the acoustic model.
const MODEL_RATE: u32 = 16_000;
/// Largest transcript accepted from the engine.
const MAX_TRANSCRIPT_BYTES: usize = 1024 * 1024;

/// The `pocketsphinx` provider (recognition only, English).
#[derive(Debug)]
pub struct PocketsphinxStt {
    /// Program to run.
    pub program: String,
    /// Directory holding `en-us/` (acoustic model), `en-us.lm.bin` and `cmudict-en-us.dict`.
    pub model_dir: PathBuf,
    /// Kill the engine after this long.
    pub timeout: Duration,
    /// Words of the pronunciation dictionary, read once (grammar words must be in it).
    dict: OnceLock<Result<HashSet<String>, VoiceError>>,
}

impl Default for PocketsphinxStt {
    fn default() -> Self {
        Self::new(
            "pocketsphinx_continuous",
            "/usr/share/pocketsphinx/model/en-us",
            Duration::from_secs(60),
        )
    }
}

/// Removes its directory when dropped, whatever way the call ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, VoiceError> {
        let p = std::env::temp_dir().join(format!(
            "abstractgateway-stt-{}",
            uuid::Uuid::new_v4().simple()
        ));
        // create_dir (not _all): fails rather than reuse something that is already there.
        fs::create_dir(&p)
            .map_err(|e| VoiceError::internal(format!("cannot create a temp dir: {e}")))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl PocketsphinxStt {
    /// A provider running `program` with the model in `model_dir`.
    pub fn new(
        program: impl Into<String>,
        model_dir: impl Into<PathBuf>,
        timeout: Duration,
    ) -> Self {
        PocketsphinxStt {
            program: program.into(),
            model_dir: model_dir.into(),
            timeout,
            dict: OnceLock::new(),
        }
    }

    fn dict_path(&self) -> PathBuf {
        self.model_dir.join("cmudict-en-us.dict")
    }

    fn dictionary(&self) -> Result<&HashSet<String>, VoiceError> {
        self.dict
            .get_or_init(|| load_dict(&self.dict_path()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The JSGF grammar for `hint`: the hint as a phrase (weighted up: it is what the caller expects to
    /// hear) or else any sequence of its words the dictionary knows. None when it knows none of them.
    fn grammar(&self, hint: &str) -> Result<Option<String>, VoiceError> {
        let dict = self.dictionary()?;
        let all: Vec<String> = hint_words(hint).collect();
        let mut known: Vec<&str> = Vec::new();
        for w in &all {
            if dict.contains(w) && !known.contains(&w.as_str()) {
                known.push(w);
            }
        }
        if known.is_empty() {
            return Ok(None);
        }
        let words = known.join(" | ");
        let rule = if all.iter().all(|w| dict.contains(w)) {
            format!("/10/ ( {} ) | /1/ ( {words} )+", all.join(" "))
        } else {
            format!("( {words} )+")
        };
        Ok(Some(format!(
            "#JSGF V1.0;\ngrammar hint;\npublic <utterance> = {rule} ;\n"
        )))
    }
}

/// Lowercase words of a hint, split on anything but letters and apostrophes.
fn hint_words(hint: &str) -> impl Iterator<Item = String> + '_ {
    hint.split(|c: char| !(c.is_ascii_alphabetic() || c == '\''))
        .map(|w| w.trim_matches('\'').to_ascii_lowercase())
        .filter(|w| !w.is_empty())
}

fn load_dict(path: &Path) -> Result<HashSet<String>, VoiceError> {
    let text = fs::read_to_string(path).map_err(|e| {
        VoiceError::unavailable(format!(
            "pocketsphinx dictionary {} is not readable ({e}); install pocketsphinx-en-us",
            path.display()
        ))
    })?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        // Alternate pronunciations are listed as `word(2)`.
        .map(|w| w.split('(').next().unwrap_or(w).to_string())
        .collect())
}

impl SpeechBackend for PocketsphinxStt {
    fn name(&self) -> &str {
        "pocketsphinx"
    }

    fn synthesize(
        &self,
        _text: &str,
        _voice: Option<&str>,
        _format: Option<&str>,
        _model: Option<&str>,
    ) -> Result<Audio, VoiceError> {
        Err(VoiceError::unsupported(
            "pocketsphinx only transcribes; use espeak or openai to synthesize",
        ))
    }

    fn transcribe(
        &self,
        audio: &[u8],
        _content_type: &str,
        language: Option<&str>,
        hint: Option<&str>,
        _model: Option<&str>,
    ) -> Result<Transcript, VoiceError> {
        if let Some(lang) = language {
            let l = lang.trim().to_ascii_lowercase();
            if !(l.is_empty() || l == "en" || l.starts_with("en-") || l.starts_with("en_")) {
                return Err(VoiceError::unsupported(format!(
                    "pocketsphinx has an English model only, not {lang:?}"
                )));
            }
        }
        if sniff(audio) != Some(AudioFormat::Wav) {
            return Err(VoiceError::unsupported(
                "pocketsphinx reads WAV audio only; use the openai provider for other formats",
            ));
        }
        let pcm = parse_wav(audio)?.to_mono(MODEL_RATE);
        let grammar = match hint {
            Some(h) => self.grammar(h)?,
            None => None,
        };
        let tmp = TempDir::new()?;
        let wav = tmp.0.join("input.wav");
        fs::write(&wav, pcm.to_wav())
            .map_err(|e| VoiceError::internal(format!("cannot write the audio: {e}")))?;
        let mut cmd = Command::new(&self.program);
        cmd.arg("-infile")
            .arg(&wav)
            .arg("-hmm")
            .arg(self.model_dir.join("en-us"))
            .arg("-dict")
            .arg(self.dict_path())
            .args(["-samprate", "16000", "-logfn", "/dev/null"]);
        if let Some(g) = grammar {
            let gram = tmp.0.join("hint.gram");
            fs::write(&gram, g)
                .map_err(|e| VoiceError::internal(format!("cannot write the grammar: {e}")))?;
            cmd.arg("-jsgf").arg(gram);
        } else {
            cmd.arg("-lm").arg(self.model_dir.join("en-us.lm.bin"));
        }
        let out = run(cmd, &self.program, None, self.timeout, MAX_TRANSCRIPT_BYTES)?;
        if !out.status.success() {
            return Err(VoiceError::internal(format!(
                "{} failed ({}): {}",
                self.program,
                out.status,
                last_line(&out.stderr)
            )));
        }
        // One line per utterance the engine segmented out of the audio.
        let text = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Transcript {
            text,
            language: Some("en".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::hint_words;

    #[test]
    fn hint_words_are_lowercase_letters() {
        let w: Vec<String> = hint_words("The quick, brown fox's 'den' -- 42!").collect();
        assert_eq!(w, ["the", "quick", "brown", "fox's", "den"]);
    }
}
