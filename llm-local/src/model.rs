//! The loaded model and its chat entry point.

use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::{self, ModelWeights};
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::prompt::{IM_END, chatml_prompt, tokenizer_from_gguf};
use crate::requant::{needs_requant, q8_cache_path, requantize, write_atomically};
use crate::stops::{Step, StopScanner};

/// Sampling and length settings of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Upper bound on generated tokens (also bounded by the context window).
    pub max_tokens: usize,
    /// 0 (or below) means greedy, hence deterministic; above, softmax sampling at this temperature.
    pub temperature: f64,
    /// Seed of the sampler, so sampled output is reproducible too.
    pub seed: u64,
    /// Nucleus sampling mass; ignored when greedy.
    pub top_p: Option<f64>,
    /// Strings that end the answer; they are not part of the returned text.
    pub stop: Vec<String>,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            max_tokens: 256,
            temperature: 0.0,
            seed: 0,
            top_p: None,
            stop: Vec::new(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn or a stop sequence appeared.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
    /// The text callback asked to stop (e.g. the client went away).
    Cancelled,
}

impl FinishReason {
    /// The OpenAI `finish_reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// Wall-clock split of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    /// Time to run the prompt through the model and pick the first token.
    pub prefill: Duration,
    /// Time spent on the following one-token steps.
    pub decode: Duration,
    /// Number of one-token forward passes after the prefill.
    pub decode_steps: usize,
}

impl Timings {
    /// Decode throughput in tokens per second (0 when nothing was decoded).
    pub fn decode_tokens_per_sec(&self) -> f64 {
        per_sec(self.decode_steps, self.decode)
    }
}

/// Events per second, 0 for an empty interval.
pub(crate) fn per_sec(count: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// The answer to one chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The assistant's text, without the end-of-turn marker or stop sequence.
    pub text: String,
    /// Tokens in the rendered prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (the end-of-turn token excluded).
    pub completion_tokens: usize,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Where the time went.
    pub timings: Timings,
}

/// SmolLM2-class llama model in GGUF form, run on the CPU with candle.
pub struct LocalModel {
    /// Never run directly: each request clones it (tensors are shared) to get its own KV cache.
    weights: ModelWeights,
    tokenizer: Tokenizer,
    end_tokens: Vec<u32>,
    context_len: usize,
    weights_path: Option<PathBuf>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("weights_path", &self.weights_path)
            .field("context_len", &self.context_len)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Loads a GGUF model; Q4_1 files are converted to Q8_0 once and cached as `<stem>.q8_0.gguf` beside them.
    ///
    /// If the cache cannot be written (read-only directory) the converted weights are used from memory.
    pub fn load(gguf_path: impl AsRef<Path>) -> Result<LocalModel> {
        let path = gguf_path.as_ref();
        let mut file = open(path)?;
        let content = read_content(&mut file, path)?;
        if !needs_requant(&content) {
            return build(content, &mut file, path, Some(path.to_path_buf()));
        }

        let cache = q8_cache_path(path);
        if cache.is_file() {
            // A cache that fails to load (truncated by a crash of an older writer, ...) is rebuilt below.
            let cached = open(&cache).and_then(|mut f| {
                let content = read_content(&mut f, &cache)?;
                build(content, &mut f, &cache, Some(cache.clone()))
            });
            if let Ok(model) = cached {
                return Ok(model);
            }
        }

        let bytes = requantize(&content, &mut file, path)?;
        let stored = write_atomically(&cache, &bytes).is_ok();
        let mut reader = Cursor::new(bytes);
        let content = read_content(&mut reader, &cache)?;
        build(content, &mut reader, &cache, stored.then(|| cache.clone()))
    }

    /// The file the weights were loaded from (`None` when converted in memory only).
    pub fn weights_path(&self) -> Option<&Path> {
        self.weights_path.as_deref()
    }

    /// Maximum prompt + generated tokens per request.
    pub fn context_len(&self) -> usize {
        self.context_len
    }

    /// Number of tokens the text encodes to (special tokens such as `<|im_start|>` count as one).
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.encode(text)?.len())
    }

    /// Checks that a conversation renders to a prompt that fits the context window; returns its token count.
    pub fn check_prompt(&self, messages: &[(String, String)]) -> Result<usize> {
        Ok(self.prompt_ids(messages)?.len())
    }

    /// Answers a conversation of `(role, content)` messages.
    pub fn chat(&self, messages: &[(String, String)], opts: &GenOptions) -> Result<Generation> {
        self.chat_streaming(messages, opts, |_| true)
    }

    /// Like [`LocalModel::chat`], handing each new piece of text to `on_text`; it returns `false` to stop early.
    pub fn chat_streaming(
        &self,
        messages: &[(String, String)],
        opts: &GenOptions,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let prompt_ids = self.prompt_ids(messages)?;
        let prompt_tokens = prompt_ids.len();
        let budget = opts.max_tokens.min(self.context_len - prompt_tokens);
        let mut generation = Generation {
            text: String::new(),
            prompt_tokens,
            completion_tokens: 0,
            finish_reason: FinishReason::Length,
            timings: Timings::default(),
        };
        if budget == 0 {
            return Ok(generation);
        }

        let mut model = self.weights.clone();
        let mut sampler = LogitsProcessor::from_sampling(opts.seed, sampling(opts));
        let mut scanner = StopScanner::new(&opts.stop);
        let mut generated: Vec<u32> = Vec::new();

        let started = Instant::now();
        let mut next = self.step(&mut model, &mut sampler, &prompt_ids, 0)?;
        generation.timings.prefill = started.elapsed();
        let decode_started = Instant::now();
        let mut full = String::new();
        loop {
            if self.end_tokens.contains(&next) {
                generation.finish_reason = FinishReason::Stop;
                break;
            }
            generated.push(next);
            full = self.decode(&generated)?;
            match scanner.advance(&full) {
                Step::Emit(delta) => {
                    if !delta.is_empty() && !on_text(&delta) {
                        generation.finish_reason = FinishReason::Cancelled;
                        break;
                    }
                }
                Step::Stopped { delta, text_len } => {
                    if !delta.is_empty() {
                        on_text(&delta);
                    }
                    full.truncate(text_len);
                    generation.finish_reason = FinishReason::Stop;
                    break;
                }
            }
            if generated.len() >= budget {
                break;
            }
            let position = prompt_tokens + generated.len() - 1;
            next = self.step(&mut model, &mut sampler, &[next], position)?;
            generation.timings.decode_steps += 1;
        }
        generation.timings.decode = decode_started.elapsed();
        if generation.finish_reason != FinishReason::Cancelled {
            let rest = scanner.finish(&full);
            if !rest.is_empty() {
                on_text(&rest);
            }
        }
        generation.text = full;
        generation.completion_tokens = generated.len();
        Ok(generation)
    }

    /// Token ids of the ChatML prompt, refused when no room is left to generate.
    fn prompt_ids(&self, messages: &[(String, String)]) -> Result<Vec<u32>> {
        let ids = self.encode(&chatml_prompt(messages)?)?;
        if ids.len() >= self.context_len {
            return Err(Error::InvalidRequest(format!(
                "the prompt has {} tokens; the context window holds {}",
                ids.len(),
                self.context_len
            )));
        }
        Ok(ids)
    }

    /// Runs `tokens` at `position` through the model and samples the following token.
    fn step(
        &self,
        model: &mut ModelWeights,
        sampler: &mut LogitsProcessor,
        tokens: &[u32],
        position: usize,
    ) -> Result<u32> {
        let input = Tensor::new(tokens, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(Error::inference)?;
        let logits = model
            .forward(&input, position)
            .and_then(|l| l.squeeze(0))
            .map_err(Error::inference)?;
        sampler.sample(&logits).map_err(Error::inference)
    }

    /// Token ids of a text, special tokens recognised.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(Error::inference)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of generated tokens, special tokens dropped.
    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(Error::inference)
    }
}

/// Greedy at temperature 0, else plain or nucleus sampling.
fn sampling(opts: &GenOptions) -> Sampling {
    if opts.temperature <= 0.0 || !opts.temperature.is_finite() {
        return Sampling::ArgMax;
    }
    match opts.top_p {
        Some(p) if p > 0.0 && p < 1.0 => Sampling::TopP {
            p,
            temperature: opts.temperature,
        },
        _ => Sampling::All {
            temperature: opts.temperature,
        },
    }
}

/// Opens a model file with a precise error.
fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))
}

/// Parses the GGUF header (metadata and tensor index).
fn read_content<R: Read + Seek>(reader: &mut R, path: &Path) -> Result<gguf_file::Content> {
    gguf_file::Content::read(reader)
        .map_err(|e| Error::model(path, format!("not a readable GGUF file: {e}")))
}

/// Builds weights and tokenizer from a parsed GGUF file.
fn build<R: Read + Seek>(
    content: gguf_file::Content,
    reader: &mut R,
    path: &Path,
    weights_path: Option<PathBuf>,
) -> Result<LocalModel> {
    let arch = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if arch != "llama" {
        return Err(Error::model(
            path,
            format!("architecture {arch:?} is not supported (llama only)"),
        ));
    }
    let tokenizer =
        tokenizer_from_gguf(&content).map_err(|e| Error::model(path, format!("tokenizer: {e}")))?;
    let mut end_tokens: Vec<u32> = content
        .metadata
        .get("tokenizer.ggml.eos_token_id")
        .and_then(|v| v.to_u32().ok())
        .into_iter()
        .collect();
    end_tokens.extend(tokenizer.token_to_id(IM_END));
    end_tokens.extend(tokenizer.token_to_id("<|endoftext|>"));
    end_tokens.sort_unstable();
    end_tokens.dedup();
    if end_tokens.is_empty() {
        return Err(Error::model(
            path,
            "no end-of-turn token (eos id or <|im_end|>) in the vocabulary",
        ));
    }
    let trained_len = content
        .metadata
        .get("llama.context_length")
        .and_then(|v| v.to_u32().ok())
        .map(|n| n as usize)
        .unwrap_or(quantized_llama::MAX_SEQ_LEN);
    // candle precomputes rotary tables for MAX_SEQ_LEN positions only.
    let context_len = trained_len.min(quantized_llama::MAX_SEQ_LEN);
    let weights = ModelWeights::from_gguf(content, reader, &Device::Cpu)
        .map_err(|e| Error::model(path, format!("loading weights: {e}")))?;
    Ok(LocalModel {
        weights,
        tokenizer,
        end_tokens,
        context_len,
        weights_path,
    })
}
