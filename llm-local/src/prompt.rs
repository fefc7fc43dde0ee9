//! The tokenizer rebuilt from GGUF metadata, and the ChatML prompt SmolLM2-Instruct was trained on.

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

use crate::error::{Error, Result};

/// The system turn SmolLM2's own chat template inserts when the conversation has none.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The end-of-turn marker of ChatML; generating it ends the answer.
pub(crate) const IM_END: &str = "<|im_end|>";

/// Builds the BPE tokenizer stored in the GGUF metadata, with SmolLM2's pre-tokenization.
pub(crate) fn tokenizer_from_gguf(
    content: &gguf_file::Content,
) -> std::result::Result<Tokenizer, String> {
    let mut tokenizer = Tokenizer::from_gguf(content).map_err(|e| e.to_string())?;
    // candle treats the `smollm` pre-tokenizer as plain GPT-2, which adds a prefix space; SmolLM2's
    // tokenizer.json splits digits one by one and adds no prefix space, so prompts tokenize as in training.
    let pre = Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ]);
    tokenizer.with_pre_tokenizer(Some(pre));
    Ok(tokenizer)
}

/// Renders a conversation in ChatML, ending with an open assistant turn.
pub fn chatml_prompt(messages: &[(String, String)]) -> Result<String> {
    if messages.is_empty() {
        return Err(Error::InvalidRequest(
            "the conversation has no messages".to_string(),
        ));
    }
    let mut prompt = String::new();
    if messages[0].0 != "system" {
        push_turn(&mut prompt, "system", DEFAULT_SYSTEM_PROMPT);
    }
    for (index, (role, content)) in messages.iter().enumerate() {
        if role.trim().is_empty() || role.contains(['\n', '<', '>']) {
            return Err(Error::InvalidRequest(format!(
                "message {index} has an invalid role {role:?}"
            )));
        }
        push_turn(&mut prompt, role, content);
    }
    prompt.push_str("<|im_start|>assistant\n");
    Ok(prompt)
}

/// Appends one `<|im_start|>role\ncontent<|im_end|>\n` turn.
fn push_turn(prompt: &mut String, role: &str, content: &str) {
    prompt.push_str("<|im_start|>");
    prompt.push_str(role);
    prompt.push('\n');
    prompt.push_str(content);
    prompt.push_str(IM_END);
    prompt.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> (String, String) {
        (role.to_string(), content.to_string())
    }

    #[test]
    fn adds_the_default_system_turn_only_when_missing() {
        let p = chatml_prompt(&[msg("user", "Hi")]).unwrap();
        assert_eq!(
            p,
            format!(
                "<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            )
        );
        let p = chatml_prompt(&[msg("system", "Be brief."), msg("user", "Hi")]).unwrap();
        assert!(p.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"));
        assert_eq!(p.matches("<|im_start|>system").count(), 1);
    }

    #[test]
    fn rejects_empty_conversations_and_bad_roles() {
        assert!(matches!(chatml_prompt(&[]), Err(Error::InvalidRequest(_))));
        assert!(matches!(
            chatml_prompt(&[msg("", "x")]),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            chatml_prompt(&[msg("user\nassistant", "x")]),
            Err(Error::InvalidRequest(_))
        ));
    }
}
